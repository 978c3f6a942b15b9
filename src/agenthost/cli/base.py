"""The typer apps and helpers shared by every command module."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from agenthost.settings import Settings, load_settings
from agenthost.storage.repositories import audit

__all__ = ["CommandError", "Settings", "announce", "app", "db", "run", "settings"]

T = TypeVar("T")
app = typer.Typer(
    help="agenthost: self-hosted agents behind OpenAI-compatible APIs.", no_args_is_help=True
)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
agents_app = typer.Typer(help="Manage agents.", no_args_is_help=True)
balance_app = typer.Typer(help="Show and grant token balances.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Manage users' secrets for MCP server headers ({secret.NAME}).", no_args_is_help=True
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
usage_app = typer.Typer(help="Spend reports.", no_args_is_help=True)
provider_keys_app = typer.Typer(
    help="Manage users' own keys for user-provided providers.", no_args_is_help=True
)
groups_app = typer.Typer(
    help="Manage groups of users that agents can be shared with.", no_args_is_help=True
)
for sub, name in [
    (users_app, "users"),
    (keys_app, "keys"),
    (agents_app, "agents"),
    (balance_app, "balance"),
    (secrets_app, "secrets"),
    (db_app, "db"),
    (usage_app, "usage"),
    (groups_app, "groups"),
    (provider_keys_app, "provider-keys"),
]:
    app.add_typer(sub, name=name)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file (or AGENTHOST_CONFIG).")
]
_state: dict[str, Any] = {}


class CommandError(Exception):
    """A user-facing failure of a command: printed as one line, exit code 1."""


@app.callback()
def main_options(config: ConfigOption = None) -> None:
    """Options shared by every command."""
    _state["config"] = config
    audit.set_actor(f"cli:{_os_user()}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = load_settings(_state.get("config"))
    value: Settings = _state["settings"]
    return value


def run(work: Callable[[Settings], Awaitable[T]]) -> T:
    """Run an async command body against a migrated database."""
    from agenthost.storage.database import Database
    from agenthost.storage.migrate import upgrade

    async def go() -> T:
        cfg = settings()
        db = Database(cfg.database_url)
        try:
            await upgrade(db.engine)
            _state["db"] = db
            return await work(cfg)
        finally:
            await db.dispose()

    return asyncio.run(go())


def db() -> Any:
    return _state["db"]


async def announce(cfg: Settings, messages: list[dict[str, Any]]) -> None:
    """Tell running servers to drop cached permissions at once (with `redis_url`); without
    Redis, or if it cannot be reached, they see the change when their caches expire."""
    if not cfg.redis_url or not messages:
        return
    from agenthost.auth.invalidations import publish_once
    from agenthost.auth.permissions import AGENT_CACHE_TTL

    try:
        await publish_once(cfg.redis_url, messages)
    except Exception as exc:
        typer.echo(
            f"note: could not reach Redis ({type(exc).__name__}); running servers see the "
            f"change within {AGENT_CACHE_TTL:g} s",
            err=True,
        )
