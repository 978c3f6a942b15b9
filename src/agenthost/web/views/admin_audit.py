"""Admin: the audit log, filtered by actor, target and kind, newest first, paged."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.storage.repositories import audit
from agenthost.web.context import AdminDep, render

router = APIRouter()
PAGE = 50
MAX_FILTER = 320
KINDS = ("api_key.", "user.", "agent.", "role_permissions.", "balance.", "sign_in.", "group.")


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()[:MAX_FILTER]
    return value or None


@router.get("/admin/audit")
async def audit_page(
    visit: AdminDep,
    actor: str | None = None,
    target: str | None = None,
    kind: str | None = None,
    before: int | None = None,
) -> Response:
    filters = {"actor": _clean(actor), "target": _clean(target), "kind": _clean(kind)}
    async with visit.services.db.session() as session:
        events = await audit.events(
            session,
            actor=filters["actor"].lower() if filters["actor"] else None,
            target=filters["target"],
            action=filters["kind"],
            limit=PAGE + 1,
            before_id=before if before is not None and before > 0 else None,
        )
    more = len(events) > PAGE
    events = events[:PAGE]
    kept = {name: value for name, value in filters.items() if value}
    older = f"/admin/audit?{urlencode({**kept, 'before': events[-1].id})}" if more else None
    return render(
        visit,
        "admin_audit.html",
        events=[audit.as_dict(event) for event in events],
        filters=filters,
        kinds=KINDS,
        older=older,
        newest="/admin/audit" + (f"?{urlencode(kept)}" if kept else ""),
        paged=before is not None,
    )
