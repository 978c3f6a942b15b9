"""The long-lived objects of one process, built from Settings and shared by all requests."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from agenthost.auth.api_keys import KeyAuthenticator
from agenthost.auth.callers import CallerAuthenticator
from agenthost.auth.invalidations import InvalidationBus
from agenthost.auth.oidc_keys import SigningKeys
from agenthost.auth.oidc_sign_in import OidcSignIn
from agenthost.auth.oidc_tokens import TokenAuthenticator
from agenthost.auth.permissions import AgentAccess
from agenthost.auth.sessions import SessionStore
from agenthost.auth.throttle import MemoryThrottle, RedisThrottle, Throttle
from agenthost.auth.user_secrets import UserSecrets
from agenthost.billing.gate import Gate
from agenthost.billing.meter import Meter
from agenthost.billing.pricing import PriceBook
from agenthost.billing.reservations import (
    DatabaseReservations,
    MemoryReservations,
    ReservationStore,
)
from agenthost.limits import MemoryRateLimiter, RateLimiter
from agenthost.limits.fallback import FallbackRateLimiter, RedisHealth, connect
from agenthost.observability import metrics
from agenthost.providers.base import Provider
from agenthost.providers.registry import build_providers
from agenthost.runs.background import BackgroundRuns
from agenthost.runs.drain import Drain
from agenthost.runs.event_log import EventLog
from agenthost.runs.leases import Leases
from agenthost.runtime.circuit import Breakers
from agenthost.runtime.loop import AgentRunner
from agenthost.runtime.tools import NoServerTools, ServerTools
from agenthost.server_secret import server_secret
from agenthost.settings import Settings
from agenthost.storage.database import Database

GAUGE_SECONDS = 5.0  # how often each worker samples its pool and settle queue


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyAuthenticator
    access: AgentAccess
    providers: dict[str, Provider]
    runner: AgentRunner
    meter: Meter
    gate: Gate
    user_secrets: UserSecrets  # per-user values for `{secret.NAME}` in MCP headers
    provider_keys: UserSecrets  # per-user keys of user-provided providers
    secret: bytes = b""  # seals compaction items; see server_secret.py
    background: BackgroundRuns = field(default_factory=BackgroundRuns)
    invalidations: InvalidationBus | None = None  # with redis_url: see invalidations.py
    throttle: Throttle = field(default_factory=MemoryThrottle)  # sign-ins, share form
    drain: Drain = field(default_factory=Drain)
    leases: Leases | None = None  # running stored responses: see runs/leases.py
    oidc_keys: SigningKeys | None = None  # with auth.oidc: the issuer's keys
    oidc_sign_in: OidcSignIn | None = None  # with auth.oidc.client_id: web sign-in
    tokens: TokenAuthenticator | None = None  # with auth.oidc.api.enabled
    callers: CallerAuthenticator = field(init=False)  # keys and tokens: auth/callers.py
    event_log: EventLog = field(init=False)  # streams of background responses
    web_sessions: SessionStore = field(init=False)  # signed-in browsers: auth/sessions.py
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.event_log = EventLog(self.db)
        self.callers = CallerAuthenticator(self.keys, self.tokens)
        web = self.settings.web
        self.web_sessions = SessionStore(self.db, web.session_idle_seconds, web.session_max_seconds)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(settings.database_url)
        providers = build_providers(settings.providers)
        redis = connect(settings.redis_url) if settings.redis_url else None
        limiter, reservations = _shared_state(redis, db)
        secret = server_secret(settings)
        run_seconds = settings.limits.run.run_deadline_seconds + 60
        free = frozenset(n for n, p in settings.providers.items() if p.type == "local")
        unbilled = frozenset(n for n, p in settings.providers.items() if not p.bill_usage)
        prices = PriceBook(settings.pricing, free=free, unbilled=unbilled)
        meter = Meter(db, settings.balance, prices, reservations, run_seconds)
        keys, access = KeyAuthenticator(db), AgentAccess(db, settings.interface.remote_agents)
        oidc_keys, tokens, sign_in = _oidc(settings, db, secret)
        bus = None
        if settings.redis_url:
            bus = InvalidationBus(settings.redis_url, keys, access)
            bus.attach()
        return cls(
            settings=settings,
            db=db,
            keys=keys,
            access=access,
            providers=providers,
            runner=AgentRunner(
                providers,
                settings.limits.run,
                server_tools=_server_tools(settings),
                disabled=settings.disabled_providers,
                breakers=Breakers({n: p.circuit_breaker for n, p in settings.providers.items()}),
            ),
            meter=meter,
            gate=Gate(meter, limiter, settings.limits),
            user_secrets=UserSecrets(db, secret),
            provider_keys=UserSecrets(db, secret, kind="provider_key"),
            secret=secret,
            invalidations=bus,
            throttle=_throttle(redis),
            leases=Leases(db, settings.limits.run_lease_seconds),
            oidc_keys=oidc_keys,
            tokens=tokens,
            oidc_sign_in=sign_in,
        )

    def start_background(self) -> None:
        self._tasks.append(asyncio.create_task(self.keys.run_background()))
        if self.leases is not None:
            self._tasks.append(asyncio.create_task(self.leases.run()))
        if self.settings.observability.metrics.enabled:
            self._tasks.append(asyncio.create_task(self._sample_gauges()))
        if self.invalidations is not None:
            self._tasks.append(asyncio.create_task(self.invalidations.run()))

    async def _sample_gauges(self) -> None:
        """This worker's pool and settle queue, every few seconds (a scrape adds up the
        workers' samples)."""
        pool = self.db.engine.pool
        while True:
            metrics.DB_POOL_CHECKED_OUT.set(getattr(pool, "checkedout", lambda: 0)())
            metrics.DB_POOL_SIZE.set(getattr(pool, "size", lambda: 0)())
            metrics.SETTLE_QUEUE.set(self.meter.settles_waiting)
            await asyncio.sleep(GAUGE_SECONDS)

    async def close(self) -> None:
        await self.background.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.keys.flush_last_used()
        if self.oidc_keys is not None:
            await self.oidc_keys.aclose()
        if self.invalidations is not None:
            await self.invalidations.aclose()
        await self.meter.aclose()  # may release reservations: before the limiter closes
        await self.gate.limiter.aclose()
        await self.runner.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        await self.db.dispose()


def _shared_state(redis: Redis | None, db: Database) -> tuple[RateLimiter, ReservationStore]:
    """Rate limits and balance reservations shared by several workers or hosts when
    `redis_url` is set (rate limits in Redis, falling back to this process while it is
    away; reservations in the database, which never falls back), else in this process."""
    if redis is None:
        return MemoryRateLimiter(), MemoryReservations()
    return FallbackRateLimiter(redis, RedisHealth()), DatabaseReservations(db)


def _oidc(
    settings: Settings, db: Database, secret: bytes
) -> tuple[SigningKeys | None, TokenAuthenticator | None, OidcSignIn | None]:
    """The issuer's keys, bearer tokens on the API and web sign-in, as configured."""
    oidc = settings.auth.oidc
    if oidc is None:
        return None, None, None
    client = httpx.AsyncClient(follow_redirects=False)
    keys = SigningKeys(oidc.issuer, client)
    tokens = TokenAuthenticator(db, keys, oidc.api) if oidc.api.enabled else None
    sign_in = None
    if oidc.client_id:
        start = settings.balance.start_balance
        sign_in = OidcSignIn(oidc, keys, db, secret, start, client)
    return keys, tokens, sign_in


def _throttle(redis: Redis | None) -> Throttle:
    if redis is None:
        return MemoryThrottle()
    return RedisThrottle(redis, MemoryThrottle())


def _server_tools(settings: Settings) -> ServerTools:
    if not settings.mcp_servers:
        return NoServerTools()
    from agenthost.runtime.mcp import McpTools  # the MCP SDK takes seconds to import

    return McpTools(settings.mcp_servers)
