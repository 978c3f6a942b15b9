"""Who may do what with remote agents, and which agents a key may call.

Role permissions come from `interface.remote_agents`, overridden per role by admins in
the web interface (table `role_permissions`); admins have all. An agent is
callable when the key's user owns it or holds a grant (user, role, a group they are in,
or public) and the key's agent scope, if any, includes it. Anything else looks exactly
like a missing agent.

Whether a user may call an agent is cached per process for at most `AGENT_CACHE_TTL`
seconds, a hard bound: an entry is re-read in the background once half of it has passed
(no request waits for the read) and never answers once it is older. So a change made in
another process (the CLI, another worker) with no invalidation bus, such as a grant or a
group membership, holds everywhere within that bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from agenthost import agent_fallbacks
from agenthost.auth.principal import Principal
from agenthost.conversation import AgentSpec
from agenthost.errors import NotFound, PermissionDenied
from agenthost.settings import RemoteAgentPermissions
from agenthost.single_flight import STALE_FACTOR, SingleFlight
from agenthost.storable import require_storable
from agenthost.storage.database import Database
from agenthost.storage.models import Agent
from agenthost.storage.repositories import agent_links as link_repo
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import role_permissions as role_repo

AGENT_CACHE_TTL = 5.0
# Re-read in the background from this age; SingleFlight serves a value until twice it.
_AGENT_REFRESH = AGENT_CACHE_TTL / STALE_FACTOR
# Admin overrides (web UI) reach other workers within this many seconds.
OVERRIDES_TTL = 5.0


@dataclass(slots=True, frozen=True)
class RolePermissions:
    use: bool
    create: bool
    share: bool
    public: bool


def permissions_for(role: str, configured: RemoteAgentPermissions) -> RolePermissions:
    if role == "admin":
        return RolePermissions(use=True, create=True, share=True, public=True)
    return RolePermissions(
        use=configured.use,
        create=configured.create,
        share=configured.share,
        public=configured.public,
    )


def agent_spec(row: Agent, links: dict[str, list[str]] | None = None) -> AgentSpec:
    links = links or {}
    return AgentSpec(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        provider=row.provider,
        model=row.model,
        instructions=row.instructions or "",
        params=dict(row.params or {}),
        mcp_servers=tuple(row.mcp_servers or ()),
        fallbacks=agent_fallbacks.pairs(row.fallbacks or ()),
        description=row.description or "",
        subagents=tuple(links.get("subagent", ())),
        handoffs=tuple(links.get("handoff", ())),
    )


def model_not_found(agent_id: str) -> NotFound:
    return NotFound(
        f"The model '{agent_id}' does not exist or you do not have access to it. 'model' "
        "takes an agent id (agent_…); GET /api/agents/v1/models lists the agents your key "
        "may call.",
        code="model_not_found",
        param="model",
    )


class AgentAccess:
    """Resolves the agents a principal may call, with a short in-process cache (an expired
    entry still answers while it is re-read in the background)."""

    def __init__(
        self,
        db: Database,
        permissions: RemoteAgentPermissions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self.permissions = permissions
        self._cache: dict[tuple[str, str, str], tuple[float, AgentSpec | None]] = {}
        self._overrides: dict[str, RolePermissions] = {}
        self._overrides_at = float("-inf")
        # Concurrent misses of one entry share one database read.
        self._override_loads: SingleFlight[str, None] = SingleFlight()
        self._agent_loads: SingleFlight[tuple[str, str, str], AgentSpec | None] = SingleFlight()
        self.announce: Callable[[dict[str, Any]], None] | None = None  # see invalidations.py

    def role_permissions(self, role: str) -> RolePermissions:
        """Effective permissions: admins have all; else an admin override or the config."""
        if role != "admin" and role in self._overrides:
            return self._overrides[role]
        return permissions_for(role, self.permissions)

    async def refresh_overrides(self, force: bool = False) -> None:
        loaded = self._overrides_at != float("-inf") and not force
        age = self._clock() - self._overrides_at if loaded else None
        await self._override_loads.cached(
            "overrides", self._load_overrides, OVERRIDES_TTL, age, None
        )

    async def _load_overrides(self) -> None:
        async with self._db.session() as session:
            rows = await role_repo.list_all(session)
        self._overrides = {
            r.role: RolePermissions(use=r.use, create=r.create, share=r.share, public=r.public)
            for r in rows
        }
        self._overrides_at = self._clock()

    def require_use(self, principal: Principal) -> None:
        if not self.role_permissions(principal.role).use:
            raise PermissionDenied(
                "Remote agent access is not enabled for your role.", code="remote_agents_disabled"
            )

    async def resolve(
        self, principal: Principal, agent_id: str, *, entry: bool = True
    ) -> AgentSpec:
        """The agent if the principal may call it. `entry=False` resolves an agent reached
        through a graph: the caller's user must be able to call it, while the key's agent
        scope applies to the agent the request names only."""
        require_storable(agent_id, "model")
        await self.refresh_overrides()
        self.require_use(principal)
        if entry and not principal.key_allows(agent_id):
            raise model_not_found(agent_id)
        cache_key = (agent_id, principal.user_id, principal.role)
        cached = self._cache.get(cache_key)
        age, value = (self._clock() - cached[0], cached[1]) if cached else (None, None)
        load = partial(self._load_agent, principal, agent_id)
        spec = await self._agent_loads.cached(cache_key, load, _AGENT_REFRESH, age, value)
        if spec is None:
            raise model_not_found(agent_id)
        return spec

    async def _load_agent(self, principal: Principal, agent_id: str) -> AgentSpec | None:
        async with self._db.session() as session:
            row = await agent_repo.get_callable(
                session, agent_id, principal.user_id, principal.role
            )
            links = await link_repo.targets(session, agent_id) if row is not None else None
        spec = agent_spec(row, links) if row is not None else None
        self._cache[(agent_id, principal.user_id, principal.role)] = (self._clock(), spec)
        return spec

    async def list_callable(self, principal: Principal) -> list[AgentSpec]:
        await self.refresh_overrides()
        self.require_use(principal)
        async with self._db.session() as session:
            rows = await agent_repo.list_callable(session, principal.user_id, principal.role)
        return [agent_spec(r) for r in rows if principal.key_allows(r.id)]

    def invalidate(self, agent_id: str | None = None, *, user_id: str | None = None) -> None:
        """Forget cached visibility (an agent or its grants changed; a user's groups
        changed; neither: anything, such as a user's role), here and (with an
        invalidation bus) in every other process."""
        self.drop(agent_id, user_id=user_id)
        if self.announce is not None:
            message: dict[str, Any] = {"agent_id": agent_id}
            if user_id is not None:  # a process that predates it drops everything
                message["user_id"] = user_id
            self.announce({"agents": message})

    def drop(self, agent_id: str | None = None, *, user_id: str | None = None) -> None:
        """Forget cached visibility in this process: of one agent, of one user's calls,
        or (neither given) everything, and re-read role overrides."""
        if agent_id is None and user_id is None:
            self._overrides_at = float("-inf")
            self._cache.clear()
            return
        for key in [k for k in self._cache if k[0] == agent_id or k[1] == user_id]:
            del self._cache[key]
