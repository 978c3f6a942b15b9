"""The long-lived objects of one process, built from Settings and shared by all requests."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from agenthost.auth.api_keys import KeyAuthenticator
from agenthost.auth.permissions import AgentAccess
from agenthost.billing.meter import Meter
from agenthost.billing.pricing import PriceBook
from agenthost.providers.base import Provider
from agenthost.providers.registry import build_providers
from agenthost.runtime.loop import AgentRunner
from agenthost.settings import Settings
from agenthost.storage.database import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyAuthenticator
    access: AgentAccess
    providers: dict[str, Provider]
    runner: AgentRunner
    meter: Meter
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(settings.database_url)
        providers = build_providers(settings.providers)
        return cls(
            settings=settings,
            db=db,
            keys=KeyAuthenticator(db),
            access=AgentAccess(db, settings.interface.remote_agents),
            providers=providers,
            runner=AgentRunner(providers, settings.limits.run),
            meter=Meter(db, settings.balance, PriceBook(settings.pricing)),
        )

    def start_background(self) -> None:
        self._tasks.append(asyncio.create_task(self.keys.run_flusher()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.keys.flush_last_used()
        for provider in self.providers.values():
            await provider.aclose()
        await self.db.dispose()
