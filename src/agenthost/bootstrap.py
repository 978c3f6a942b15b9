"""First start: with an empty user table, create the first admin, an API key and an agent.

The admin's password and the key are printed once; only their hashes are stored.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from agenthost.auth.api_keys import generate_key
from agenthost.auth.passwords import hash_password
from agenthost.settings import Settings
from agenthost.storage.database import Database
from agenthost.storage.repositories import agents, api_keys, balances, users

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class FirstStart:
    email: str
    password: str
    api_key: str
    agent_id: str | None


def _default_agent_target(settings: Settings) -> tuple[str, str] | None:
    for name, provider in settings.providers.items():
        model = provider.models[0] if provider.models else None
        if provider.type == "local":
            return name, model or "SmolLM2-135M-Instruct"
        if model:
            return name, model
    return None


async def first_start(db: Database, settings: Settings) -> FirstStart | None:
    """Create the first admin, key and agent if there are no users yet; else None."""
    async with db.session() as session:
        if await users.count(session) > 0:
            return None
        password = secrets.token_urlsafe(12)
        admin = await users.create(
            session,
            settings.bootstrap.admin_email,
            role="admin",
            password_hash=hash_password(password),
        )
        await balances.ensure(session, admin.id, settings.balance.start_balance)
        plain, prefix, key_hash = generate_key()
        await api_keys.create(
            session,
            user_id=admin.id,
            name="first key",
            prefix=prefix,
            key_hash=key_hash,
            expires_at=None,
            agent_scope=None,
        )
        agent_id = None
        target = _default_agent_target(settings) if settings.bootstrap.default_agent else None
        if target is not None:
            agent = await agents.create(
                session,
                owner_id=admin.id,
                name="Assistant",
                provider=target[0],
                model=target[1],
                instructions="You are a helpful assistant. Answer briefly.",
            )
            agent_id = agent.id
    return FirstStart(admin.email, password, plain, agent_id)


def announce(first: FirstStart) -> str:
    lines = [
        "agenthost first start: created the first admin. This is shown only once.",
        f"  admin email:    {first.email}",
        f"  admin password: {first.password}",
        f"  API key:        {first.api_key}",
    ]
    if first.agent_id:
        lines.append(f"  agent id:       {first.agent_id}  (use it as the model)")
    lines.append(
        "  credits:        the embedded model is free; other models spend each user's "
        f"balance. Grant more: agenthost balance add {first.email} 1000000"
    )
    return "\n".join(lines)
