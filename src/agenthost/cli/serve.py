"""`agenthost serve`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from agenthost.cli.base import ConfigOption, Settings, _state, app, db, run, settings

WS_FRAME_SLACK = 65_536

# --- serve ---------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse to start when a provider's ${VAR} is unset (else it is disabled).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Start the HTTP server."""
    if config is not None:  # `agenthost serve --config F` as well as `agenthost --config F serve`
        _state["config"] = config
    if strict:  # the workers read the configuration again: tell them through the env
        os.environ["AGENTHOST_STRICT_PROVIDERS"] = "true"
    import uvicorn

    from agenthost import bootstrap
    from agenthost.providers.registry import build_provider

    cfg = settings()  # a bad config stops here, before anything listens

    async def prepare(cfg: Settings) -> None:
        # Providers check their own settings when built: fail here, not in a worker.
        for name, provider_settings in cfg.providers.items():
            await build_provider(name, provider_settings).aclose()
        first = await bootstrap.first_start(db(), cfg)
        if first is not None:
            sys.stderr.write(bootstrap.announce(first) + "\n")

    run(prepare)
    for warning in worker_warnings(cfg, workers):
        sys.stderr.write(f"warning: {warning}\n")
    if _state.get("config"):
        os.environ["AGENTHOST_CONFIG"] = str(Path(_state["config"]).resolve())
    if workers > 1:
        _share_metrics(cfg.data_dir / "metrics")
    uvicorn.run(
        "agenthost.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=cfg.log_level.lower(),
        timeout_graceful_shutdown=math.ceil(cfg.limits.graceful_shutdown_seconds),
        access_log=False,
        proxy_headers=False,  # the client address is ours to derive (trusted_proxies)
        # A WebSocket message obeys the body limit (the app answers `request_too_large`
        # up to here; a larger frame closes the connection with 1009), and no
        # per-message compression: its buffers and zlib windows grow per connection.
        ws_max_size=cfg.limits.max_body_bytes + WS_FRAME_SLACK,
        ws_per_message_deflate=False,
        # Idle keep-alive connections stay open longer than clients and proxies keep theirs
        # (commonly 60 s): uvicorn's 5 s default closes connections a client is about to
        # reuse, which it sees as a reset (ReadError) on a request that never arrived.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


KEEP_ALIVE_SECONDS = 75


def worker_warnings(cfg: Settings, workers: int) -> list[str]:
    """What a multi-worker server should know about its configuration."""
    if workers < 2:
        return []
    warnings = []
    if cfg.database_url.startswith("sqlite"):
        warnings.append(
            f"{workers} workers share one SQLite file: writes queue behind one another; "
            "use PostgreSQL (database_url: postgresql+asyncpg://…) for several workers"
        )
    if not cfg.redis_url:
        warnings.append(
            "no redis_url: rate limits, balance reservations and cache invalidations hold "
            f"per worker only (each of the {workers} workers allows the full limit); "
            "set redis_url to share them"
        )
    local = [name for name, p in cfg.providers.items() if p.type == "local"]
    if local:
        warnings.append(
            f"each of the {workers} workers loads its own copy of the embedded model "
            f"(provider {', '.join(repr(n) for n in local)}): memory and threads multiply"
        )
    return warnings


def _share_metrics(folder: Path) -> None:
    """Workers write their metrics to files in `folder` (emptied: a past run's values
    must not count), so a scrape answered by any of them sees the whole server."""
    from agenthost.observability.metrics import MULTIPROCESS_ENV

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_ENV] = str(folder.resolve())
