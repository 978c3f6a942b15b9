"""Admin: every user's API keys with their use, and revoking any of them (audit-logged:
the repository records `api_key.revoked` with the admin as actor)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.storage.repositories import api_keys as key_repo
from agenthost.web import key_stats
from agenthost.web.context import AdminDep, redirect, render
from agenthost.web.errors import not_found

router = APIRouter()
PAGE = "/admin/keys"
SHOWN = 500  # newest first; filter by owner to see one user's older keys
MAX_FILTER = 320


@router.get(PAGE)
async def keys_page(visit: AdminDep, owner: str | None = None) -> Response:
    owner = (owner or "").strip()[:MAX_FILTER] or None
    async with visit.services.db.session() as session:
        rows = await key_repo.list_all(session, owner_email=owner, limit=SHOWN + 1)
        stats = await key_stats.of_keys(session, [key for key, _ in rows[:SHOWN]])
    return render(
        visit,
        "admin_keys.html",
        rows=rows[:SHOWN],
        more=len(rows) > SHOWN,
        stats=stats,
        owner=owner or "",
    )


@router.post(PAGE + "/{key_id}/revoke")
async def revoke_any_key(key_id: str, visit: AdminDep) -> Response:
    async with visit.services.db.session() as session:
        if await key_repo.revoke(session, key_id) is None:
            raise not_found("key")
    visit.services.keys.invalidate(key_id=key_id)
    return redirect(visit, PAGE + "?notice=revoked")
