"""Which upstreams may serve an agent's model call, in order: the primary, then the
agent's fallbacks. A call moves on to the next only when the one before failed before
its first token in a way another provider may not share (see `moves_on`), or when that
one's circuit breaker is open. When every breaker is open the primary is tried anyway:
a call is never refused for a breaker alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agenthost.conversation import AgentSpec, ModelRequest
from agenthost.errors import ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.providers.base import Provider
from agenthost.runtime.circuit import Breakers, Ticket


@dataclass(slots=True, frozen=True)
class Route:
    provider: Provider
    model: str
    primary: bool = False  # the agent's own provider and model

    @property
    def label(self) -> str:
        return f"{self.provider.name}:{self.model}"


def routes(agent: AgentSpec, providers: dict[str, Provider]) -> list[Route]:
    """The agent's own provider and model, then each fallback, keeping those whose provider
    is running: one removed from the configuration or disabled (its `${VAR}` unset) is
    passed over, so a disabled primary is served by its fallbacks."""
    found: list[Route] = []
    primary = providers.get(agent.provider)
    if primary is not None:
        found.append(Route(primary, agent.model, primary=True))
    for name, model in agent.fallbacks:
        provider = providers.get(name)
        if provider is not None:
            found.append(Route(provider, model))
    return found


def attempts(candidates: list[Route], breakers: Breakers) -> Iterator[tuple[Route, Ticket, bool]]:
    """(route, its ticket, whether it is the last chance) for each route to try, lazily:
    a breaker's one trial is taken only when its route is reached."""
    passed = False
    for index, route in enumerate(candidates):
        ticket = breakers.enter(route.provider.name)
        if ticket is None:
            continue
        passed = True
        last = not any(breakers.may_enter(r.provider.name) for r in candidates[index + 1 :])
        yield route, ticket, last
    if not passed:
        yield candidates[0], breakers.forced(candidates[0].provider.name), True


def moves_on(exc: ProviderError, call: ModelRequest) -> bool:
    """Whether another provider may serve a call that failed this way before its first
    token: unavailable (refused, 429, 5xx after retries) or timed out, and credentials
    rejected (401/403) for the server's own key, which is the operator's fault, not the
    caller's. A caller's own key being refused, a bad request or a content filter would
    fail (or be wrong) anywhere: those are the caller's answer."""
    if isinstance(exc, UpstreamUnavailable | UpstreamTimeout):
        return True
    return exc.status in (401, 403) and call.api_key is None
