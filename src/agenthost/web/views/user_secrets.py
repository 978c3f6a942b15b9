"""Settings → Secrets for tools: set, replace and delete your own secrets.

A secret's value is write-only here: pages list names and dates, never values, and a
form that fails is shown again without the value typed into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.errors import InvalidRequest
from agenthost.runtime.mcp_headers import servers_by_secret
from agenthost.web.context import FormDep, UserDep, Visit, redirect, render
from agenthost.web.context import field as form_field
from agenthost.web.errors import forbidden, not_found

router = APIRouter()
PAGE = "/settings/secrets"


def _require_use(visit: Visit) -> None:
    if not visit.perms.use:
        raise forbidden("Remote agent access is not enabled for your role.")


@dataclass(slots=True)
class SecretForm:
    """The form as typed, without the value (never shown back), and its field errors."""

    name: str = ""
    errors: dict[str, str] = field(default_factory=dict)


async def secrets_page(visit: Visit, typed: SecretForm | None = None) -> Response:
    secrets = await visit.services.user_secrets.describe(visit.me.id)
    wanted = servers_by_secret(
        visit.services.settings.mcp_servers, exclude={s.name for s in secrets}
    )
    return render(
        visit,
        "secrets.html",
        status=400 if typed and typed.errors else 200,
        secret_form=typed or SecretForm(),
        secrets=secrets,
        wanted_secrets=wanted,
    )


@router.get(PAGE)
async def show_secrets(visit: UserDep) -> Response:
    _require_use(visit)
    return await secrets_page(visit)


@router.post("/settings/secrets")
async def set_secret(visit: UserDep, form: FormDep) -> Response:
    _require_use(visit)
    raw = form.get("value")
    value = raw if isinstance(raw, str) else ""
    typed = SecretForm(name=form_field(form, "name"))
    try:
        await visit.services.user_secrets.put(visit.me.id, typed.name, value)
    except InvalidRequest as exc:
        typed.errors[exc.param or "value"] = exc.message
        return await secrets_page(visit, typed)
    return redirect(visit, f"{PAGE}?notice=saved")


@router.post("/settings/secrets/{name}/delete")
async def delete_secret(name: str, visit: UserDep) -> Response:
    _require_use(visit)
    if not await visit.services.user_secrets.delete(visit.me.id, name):
        raise not_found("secret")
    return redirect(visit, f"{PAGE}?notice=deleted")
