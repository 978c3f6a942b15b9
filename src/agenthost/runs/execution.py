"""One agent run as seen from a request: admission, priming, events, settlement.

`Execution.start()` passes the rate limits, then runs until the first event (the first
model call is admitted against the balance on the way), so anything that fails before
the first token becomes a plain HTTP error. `events()`
then yields every run event; when the run ends, fails or the client goes away, the
ledger is settled exactly once, shielded from the cancellation of a dropped client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import anyio

from agenthost.auth.principal import Principal
from agenthost.billing.budget import RunBudget
from agenthost.billing.gate import Pass
from agenthost.conversation import AgentSpec, RunRequest
from agenthost.errors import InvalidRequest, ServerShuttingDown
from agenthost.events import RunEvent, RunFinished
from agenthost.observability import metrics, tracing
from agenthost.runs.graph_access import resolve_graph
from agenthost.runtime.graph import Graph
from agenthost.runtime.loop import RunState
from agenthost.runtime.mcp_headers import (
    needed_secrets,
    require_secrets,
    token_required,
    token_servers,
)
from agenthost.runtime.tools import Caller
from agenthost.services import Services

log = logging.getLogger(__name__)

# Which upstream (provider:model) served the run's first model call: the agent's own,
# or one of its fallbacks.
SERVED_BY_HEADER = "x-agenthost-served-by"


class Execution:
    """One run behind a request: the budget gate, the run, and settlement exactly once.

    After `start()`, `headers` holds the headers to send with a successful response:
    `x-ratelimit-*` (when a rate limit applies) and `x-agenthost-served-by`.
    """

    def __init__(
        self,
        services: Services,
        principal: Principal,
        agent: AgentSpec,
        request: RunRequest,
        request_id: str,
    ) -> None:
        self.services = services
        self.principal = principal
        self.agent = agent
        # One effective output cap for billing, the runtime and the response object.
        request.max_output_tokens = services.runner.output_cap(agent, request)
        self.request = request
        self.request_id = request_id
        self.state = RunState()
        self.headers: dict[str, str] = {}
        self._pass: Pass | None = None
        self._events: AsyncGenerator[RunEvent, None] | None = None
        self._first: RunEvent | None = None
        self._for: Caller | None = None
        self._consumer: asyncio.Task[object] | None = None
        self._interrupted = False

    async def start(self) -> None:
        """Pass the gate (429, 402) and run until the first event; errors here are
        ordinary HTTP errors, and nothing reaches the upstream unless the gate passed."""
        await self.admit()
        await self.prime()

    async def admit(self) -> None:
        """The first half of `start()`: the gate."""
        self.state.graph = await self._graph()  # a hidden agent of the tree: 404, nothing sent
        self._for = await self._caller()  # a missing secret fails before the gate
        with tracing.span("agenthost.admission", {"agenthost.agent": self.agent.id}):
            self._pass = await self.services.gate.enter(self.principal, self.agent, self.request)
        metrics.ACTIVE_RUNS.inc()
        meter, principal = self.services.gate.meter, self.principal
        self.state.graph.budget_for = lambda agent: meter.budget(principal, agent)
        self.state.budget = self._pass.budget
        self.headers = self._pass.headers

    async def prime(self) -> None:
        """The second half of `start()`: the run, up to its first event."""
        assert self._for is not None, "admit() first"
        try:
            runner = self.services.runner
            self._events = runner.run(self.agent, self.request, self.state, self._for)
            self._first = await anext(self._events)
        except BaseException:
            await self.close()
            raise
        if self.state.served_by:  # known at the first token, before any byte is sent
            self.headers = {**self.headers, SERVED_BY_HEADER: self.state.served_by}

    async def _graph(self) -> Graph:
        """The agents the run may reach, each checked for the caller (graph_access.py)."""
        agents = await resolve_graph(self.services.access, self.principal, self.agent)
        depth = self.services.settings.limits.agent_graph_depth
        return Graph(agents, depth_limit=depth)

    async def _caller(self) -> Caller:
        """Who the run is for, with the secrets its MCP headers reference (read only
        when some header references one: most agents need no database read here)."""
        user_id, email = self.principal.user_id, self.principal.email
        token = self.principal.bearer_token
        # Every agent of the tree: a sub-agent's provider key and MCP headers are the
        # caller's too.
        graph = self.state.graph.agents.values() if self.state.graph else (self.agent,)
        keys = await self._provider_keys(tuple(dict.fromkeys(a.provider for a in graph)))
        configs = self.services.settings.mcp_servers
        if not configs:
            return Caller(user_id, email, provider_keys=keys)
        mcp = tuple(dict.fromkeys(s for agent in graph for s in agent.mcp_servers))
        if token is None and (servers := token_servers(mcp, configs)):
            raise token_required(servers[0])
        needed = needed_secrets(mcp, configs)
        if not needed:
            return Caller(user_id, email, oidc_token=token, provider_keys=keys)
        stored = await self.services.user_secrets.values(user_id)
        require_secrets(needed, stored)
        wanted = {name for names in needed.values() for name in names}
        secrets = {k: v for k, v in stored.items() if k in wanted}
        return Caller(user_id, email, secrets, oidc_token=token, provider_keys=keys)

    async def _provider_keys(self, providers: tuple[str, ...]) -> dict[str, str]:
        """The caller's own keys for the user-provided providers among `providers` (on a
        shared agent too: the caller pays their provider, never the owner's key); one
        missing fails the request before anything goes upstream."""
        settings = self.services.settings.providers
        wanted = [p for p in providers if p in settings and settings[p].user_provided]
        if not wanted:
            return {}
        keys = await self.services.provider_keys.values(self.principal.user_id)
        for provider in wanted:
            if not keys.get(provider):
                whose = (
                    f"This agent's provider '{provider}'"
                    if provider == self.agent.provider
                    else f"Provider '{provider}' (of an agent this one calls or hands over to)"
                )
                raise InvalidRequest(
                    f"{whose} uses each caller's own key, and you have "
                    "not set one: add it under Settings → Provider keys in the web interface "
                    "(or ask an admin to run `agenthost provider-keys set`).",
                    code="missing_provider_key",
                )
        return {provider: keys[provider] for provider in wanted}

    async def events(self) -> AsyncGenerator[RunEvent, None]:
        assert self._events is not None and self._first is not None, "start() first"
        drain = self.services.drain
        self._consumer = asyncio.current_task()
        drain.opened(self)
        try:
            self._note(self._first)
            yield self._first
            async for event in self._events:
                self._note(event)
                yield event
        except asyncio.CancelledError:
            if not self._interrupted or self._consumer is None:
                raise
            self._consumer.uncancel()  # our own interruption: end the stream properly
            raise ServerShuttingDown(
                "The server is shutting down; this run was stopped. Retry the request."
            ) from None
        finally:
            drain.closed(self)
            await self.close()

    def _note(self, event: RunEvent) -> None:
        """A run a limit ended says why in the log: Chat Completions can only answer
        `finish_reason: "length"`."""
        if isinstance(event, RunFinished) and event.incomplete_reason:
            log.info(
                "%s: the run of agent %s ended incomplete (%s)",
                self.request_id,
                self.agent.id,
                event.incomplete_reason,
            )

    def interrupt(self) -> None:
        """Stop the run where it waits (the drain time of a stopping server is up)."""
        if not self._interrupted and self._consumer is not None:
            self._interrupted = True
            self._consumer.cancel()

    async def close(self) -> None:
        """Stop the run (cancelling the upstream) and settle the ledger, once."""
        with anyio.CancelScope(shield=True):
            if self._events is not None:
                events, self._events = self._events, None
                try:
                    await events.aclose()
                except Exception:
                    log.debug("run closed with an error", exc_info=True)
            passed, self._pass = self._pass, None
            if passed is not None:
                metrics.ACTIVE_RUNS.dec()
                self.state.close_pending()
                # In a task of its own: a cancel arriving meanwhile (a WebSocket closing
                # right after the last event) cannot cut the tree's settlement short.
                await asyncio.shield(asyncio.ensure_future(self._settle(passed)))

    async def _settle(self, passed: Pass) -> None:
        """The whole tree at once: started together, its settles share one database
        transaction (the ledger's group commit) instead of one commit per run."""
        with tracing.span("agenthost.settle"):
            children = self.state.tree()[1:]
            other = sum(s.usage.total_tokens for child in children for s in child.steps)
            leave = self.services.gate.leave(passed, self.state.steps, self.request_id, other)
            await asyncio.gather(*(self._settle_child(child) for child in children), leave)

    async def _settle_child(self, child: RunState) -> None:
        """A sub-agent's or handoff target's calls: one ledger row each, charged to the
        caller, labelled with the agent that made it and this request's id."""
        if isinstance(child.budget, RunBudget):
            try:
                await self.services.gate.meter.settle(child.budget, child.steps, self.request_id)
            except Exception:
                log.exception("settling a sub-run of %s failed", self.request_id)
