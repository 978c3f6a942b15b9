"""The ASGI application: `create_app(settings)` builds everything; nothing happens at import."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI

from agenthost import __version__, bootstrap, web
from agenthost.http import chat, errors, models, responses_api, usage
from agenthost.http.body_limit import BodyLimit
from agenthost.http.client_address import networks
from agenthost.http.fast_lane import FastLaneApp
from agenthost.http.metrics import metrics_endpoint
from agenthost.observability import metrics, tracing
from agenthost.services import Services
from agenthost.settings import Settings, load_settings
from agenthost.storage.migrate import upgrade

log = logging.getLogger(__name__)
API_PREFIX = "/api/agents/v1"


# Requests allocate many short-lived objects that reference counting frees; cycles are
# rare. A higher first-generation threshold and freezing everything built at startup (so
# collections never rescan it) cut the collector's pauses: the bench's p99 latency at 16
# concurrent requests fell from about 90 ms to about 25 ms.
GC_YOUNG_THRESHOLD = 50_000


def _tune_gc() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


# Open runs are ended this long before the graceful shutdown's deadline, so their final
# events reach the clients before the server closes the connections.
DRAIN_MARGIN_SECONDS = 2.0


def _drain_on_signal(services: Services, grace: float) -> None:
    """Chain onto the server's SIGTERM/SIGINT handlers (installed before the app starts):
    the drain ends open runs shortly before the server's own deadline cuts them."""
    loop = asyncio.get_running_loop()
    delay = max(0.0, grace - DRAIN_MARGIN_SECONDS)

    def schedule() -> None:
        loop.call_later(delay, services.drain.stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(schedule)
            if callable(previous):
                previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (an app embedded in a test harness)
            return


def _logs(level: str) -> None:
    """agenthost's own log lines and its access log (one line per request, written by
    http/metrics.py) on stderr, at `log_level`. Libraries' loggers are left alone: only
    their warnings show, so a DEBUG level never prints their request dumps."""
    for name, layout in (
        ("agenthost", "%(asctime)s %(levelname)s %(name)s: %(message)s"),
        ("agenthost.access", "%(asctime)s access %(message)s"),
    ):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(layout))
            logger.addHandler(handler)
        logger.setLevel(level.upper())
    logging.getLogger("agenthost.access").propagate = False  # not twice through agenthost's


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    _logs(settings.log_level)
    for name, variable in settings.disabled_providers.items():
        log.warning(
            "provider %r is disabled: its configuration references ${%s}, which is not set; "
            "its agents answer 503 (`serve --strict` refuses to start instead)",
            name,
            variable,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        observed = settings.observability
        tracing.configure(observed.otlp_endpoint, observed.service_name, observed.record_content)
        services = Services.build(settings)
        await upgrade(services.db.engine)
        first = await bootstrap.first_start(services.db, settings)
        if first is not None:
            sys.stderr.write(bootstrap.announce(first) + "\n")
            sys.stderr.flush()
        app.state.services = services
        services.start_background()
        _drain_on_signal(services, settings.limits.graceful_shutdown_seconds)
        _tune_gc()
        try:
            yield
        finally:
            await services.close()
            metrics.worker_exited(os.getpid())
            tracing.shutdown()

    app = FastLaneApp(
        title="agenthost",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    errors.install(app)
    app.state.trusted_proxies = networks(settings.trusted_proxies)
    app.include_router(chat.router, prefix=API_PREFIX, tags=["chat"])
    app.include_router(models.router, prefix=API_PREFIX, tags=["models"])
    app.include_router(responses_api.router, prefix=API_PREFIX, tags=["responses"])
    app.include_router(usage.router, prefix=API_PREFIX, tags=["usage"])

    web.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if settings.observability.metrics.enabled:
        scrape = metrics_endpoint(settings.observability.metrics)
        app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)

    app.add_middleware(
        BodyLimit, max_bytes=settings.limits.max_body_bytes, page_max_bytes=web.FORM_MAX_BYTES
    )
    app.open_fast_lane(
        {
            f"{API_PREFIX}/chat/completions": chat.create_chat_completion,
            f"{API_PREFIX}/responses": responses_api.create_response,
        },
        settings.limits.max_body_bytes,
    )
    return app
