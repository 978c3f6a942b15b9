"""Sign-in successes and failures in the audit log (their own transaction: nothing else
changes when someone signs in)."""

from __future__ import annotations

from agenthost.services import Services
from agenthost.storage.models import User
from agenthost.storage.repositories import audit


async def record_sign_in(
    services: Services,
    email: str,
    user: User | None,
    address: str,
    *,
    ok: bool,
    method: str = "password",
) -> None:
    action = "sign_in.succeeded" if ok else "sign_in.failed"
    target_id = user.id if user is not None else "unknown"
    details = {"address": address, "method": method}
    async with services.db.session() as session:
        audit.record(session, action, "user", target_id, email, details, by=email)
        await session.commit()
