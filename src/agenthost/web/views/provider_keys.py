"""Settings → Provider keys: your own key for each provider set up as `user_provided`.

A key is write-only here: the page shows its last four characters and dates, never the
key, and a form that fails is shown again without what was typed into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.errors import InvalidRequest
from agenthost.web.context import FormDep, UserDep, Visit, field, redirect, render
from agenthost.web.errors import forbidden, not_found

router = APIRouter()
PAGE = "/settings/provider-keys"


@dataclass(slots=True, frozen=True)
class KeyRow:
    provider: str
    masked: str | None  # "…abcd" when set
    updated_at: datetime | None


def _providers(visit: Visit) -> list[str]:
    if not visit.perms.use:
        raise forbidden("Remote agent access is not enabled for your role.")
    return sorted(n for n, p in visit.services.settings.providers.items() if p.user_provided)


async def keys_page(visit: Visit, error: str | None = None) -> Response:
    providers = _providers(visit)
    store = visit.services.provider_keys
    values = await store.values(visit.me.id)
    dates = {info.name: info.updated_at for info in await store.describe(visit.me.id)}
    rows = [
        KeyRow(name, "…" + values[name][-4:] if name in values else None, dates.get(name))
        for name in providers
    ]
    status = 400 if error else 200
    return render(visit, "provider_keys.html", status=status, error=error, rows=rows)


@router.get(PAGE)
async def show_keys(visit: UserDep) -> Response:
    return await keys_page(visit)


@router.post(PAGE)
async def set_key(visit: UserDep, form: FormDep) -> Response:
    provider = field(form, "provider")
    if provider not in _providers(visit):
        return await keys_page(visit, error="Choose one of the providers listed.")
    raw = form.get("key")
    try:
        await visit.services.provider_keys.put(
            visit.me.id, provider, raw if isinstance(raw, str) else ""
        )
    except InvalidRequest:  # never repeat the key: the message is about its shape only
        error = "A key has 1 to 4,096 printable ASCII characters (no line breaks)."
        return await keys_page(visit, error=error)
    return redirect(visit, f"{PAGE}?notice=saved")


@router.post(PAGE + "/{provider}/delete")
async def delete_key(provider: str, visit: UserDep) -> Response:
    _providers(visit)
    if not await visit.services.provider_keys.delete(visit.me.id, provider):
        raise not_found("key")
    return redirect(visit, f"{PAGE}?notice=deleted")
