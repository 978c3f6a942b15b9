"""OpenTelemetry traces, exported over OTLP/HTTP when `observability.otlp_endpoint` is set.

The OpenTelemetry SDK is imported by `configure` only: without the setting, `tracer()`
is None and every call site skips its span with one `if`, so no OpenTelemetry code runs
on the hot path. Spans follow the GenAI semantic conventions for model calls
(`gen_ai.system`, `gen_ai.request.model`, `gen_ai.usage.*`); prompt and output text are
recorded only with `observability.record_content: true`.

Spans that live across the `yield`s of an async generator (a model call, a streamed run)
are started without becoming current and ended explicitly: a context attached in one
step of a generator cannot always be detached in another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

EXPORT_DELAY_MS = 1000  # a request's spans leave within a second, in batches

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_record_content = False


def configure(endpoint: str | None, service_name: str, record_content: bool) -> None:
    """Start exporting to `endpoint` (an OTLP/HTTP base URL), or stay off when None."""
    global _tracer, _provider, _record_content
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS))
    _provider, _tracer, _record_content = provider, provider.get_tracer("agenthost"), record_content


def shutdown() -> None:
    """Flush what is pending and stop exporting."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def tracer() -> Tracer | None:
    return _tracer


def record_content() -> bool:
    return _record_content


@contextmanager
def request_span(method: str, route: str, headers: Mapping[str, str]) -> Iterator[Span | None]:
    """The server span of one request, continuing the caller's `traceparent`."""
    active = _tracer
    if active is None:
        yield None
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    with active.start_as_current_span(
        f"{method} {route}", context=extract(headers), kind=SpanKind.SERVER
    ) as span:
        span.set_attribute("http.request.method", method)
        span.set_attribute("http.route", route)
        yield span


_OFF: AbstractContextManager[None] = nullcontext()


def span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Span | None]:
    """A child span of whatever is current (for code that does not yield meanwhile);
    with tracing off, one shared do-nothing context."""
    active = _tracer
    if active is None:
        return _OFF
    return active.start_as_current_span(name, attributes=dict(attributes or {}))


def start(name: str, attributes: Mapping[str, Any] | None = None) -> Span | None:
    """A child span of the current one that the caller ends (across generator yields)."""
    active = _tracer
    if active is None:
        return None
    return active.start_span(name, attributes=dict(attributes or {}))


def fail(span: Span | None, error: BaseException) -> None:
    if span is not None:
        from opentelemetry.trace import Status, StatusCode

        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
