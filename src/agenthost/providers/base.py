"""The one interface every upstream sits behind.

A provider turns a `ModelRequest` into a stream of `ModelEvent`s: text and reasoning
deltas, tool calls (start / argument deltas / end, with stable ids and indexes), one
`UsageReport` and one `Finish`. Failures are raised as `ProviderError` subclasses;
`ProviderError`s raised before the first event may be retried by the caller.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agenthost.conversation import ModelRequest
from agenthost.events import ModelEvent


@dataclass(slots=True, frozen=True)
class ProviderHealth:
    ok: bool
    detail: str


class Provider(ABC):
    """An upstream model source. Instances are long-lived and shared by all requests."""

    # True when `stream` bounds every wait by `ModelRequest.deadline` itself; otherwise
    # the runtime puts a timer around each event.
    bounds_waits = False
    # The output cap sent when neither the request nor the agent sets one (every upstream
    # call carries a cap: billing reserves exactly it). `max_output_tokens` in the
    # provider's settings replaces it.
    default_max_output_tokens = 4096
    # `gen_ai.system` in traces (OpenTelemetry's GenAI conventions).
    system = "_OTHER"

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Call the model; cancelling the iteration cancels the upstream call."""

    async def stream_batches(self, request: ModelRequest) -> AsyncIterator[list[ModelEvent]]:
        """`stream` as lists of the events that arrived together (never empty), which the
        runtime consumes: one step per batch instead of per event. By default each event
        is its own batch; a provider that reads many at once overrides this."""
        async for event in self.stream(request):
            yield [event]

    def supports_json_schema(self) -> bool:
        """Whether `response_format` json_schema is enforced by the upstream itself."""
        return True

    async def health(self) -> ProviderHealth:
        return ProviderHealth(ok=True, detail="ready")

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release pooled connections, threads and models."""
