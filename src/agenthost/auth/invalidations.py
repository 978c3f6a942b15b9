"""Cache invalidations carried to every worker and host through Redis pub/sub.

A change made in one process (a disabled user, a changed role, an agent's shares) drops
the entries cached there at once (`KeyAuthenticator.invalidate`, `AgentAccess.invalidate`).
With `redis_url` set, the same invalidation is published on one channel and every other
process drops its entries too, instead of serving them until they expire. A message lost
while Redis is away leaves the expiry as the bound (30 s for keys, 5 s for agents).
Processes that hold no caches (the CLI) send theirs with `publish_once`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from redis.asyncio import Redis

from agenthost.auth.api_keys import KeyAuthenticator
from agenthost.auth.permissions import AgentAccess

log = logging.getLogger(__name__)

CHANNEL = "agenthost:invalidate"
RECONNECT_SECONDS = 1.0


def agents_of_user(user_id: str) -> dict[str, Any]:
    """The message for a change of what one user may call (their groups)."""
    return {"agents": {"agent_id": None, "user_id": user_id}}


def agents_changed(agent_id: str | None = None) -> dict[str, Any]:
    """The message for a change of one agent's grants (None: anything)."""
    return {"agents": {"agent_id": agent_id}}


async def publish_once(redis_url: str, messages: list[dict[str, Any]]) -> None:
    """Publish invalidations from a process with no bus; raises if Redis cannot be reached
    within a couple of seconds (the caches' expiry is then the bound)."""
    redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        for message in messages:
            await redis.publish(CHANNEL, orjson.dumps(message))
    finally:
        await redis.aclose()


class InvalidationBus:
    """Publishes this process's invalidations and applies everyone's."""

    def __init__(self, redis_url: str, keys: KeyAuthenticator, access: AgentAccess) -> None:
        # Its own client: a subscription waits on its connection indefinitely, which the
        # limits' pool (5 s read timeout) would take for a dead Redis.
        self._redis = Redis.from_url(redis_url, health_check_interval=30)
        self._keys = keys
        self._access = access
        self._sending: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()

    def attach(self) -> None:
        """Publish the invalidations of this process's key and agent caches."""
        self._keys.announce = self.announce
        self._access.announce = self.announce

    def announce(self, message: dict[str, Any]) -> None:
        """Publish `message` in the background (callers are plain functions)."""
        task = asyncio.get_running_loop().create_task(self._publish(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, message: dict[str, Any]) -> None:
        try:
            await self._redis.publish(CHANNEL, orjson.dumps(message))
        except Exception as exc:  # the other processes fall back to their caches' expiry
            log.warning("could not publish a cache invalidation: %s", exc)

    def apply(self, message: dict[str, Any]) -> None:
        if (keys := message.get("keys")) is not None:
            self._keys.drop(key_id=keys.get("key_id"), user_id=keys.get("user_id"))
        if (agents := message.get("agents")) is not None:
            self._access.drop(agents.get("agent_id"), user_id=agents.get("user_id"))

    async def run(self) -> None:
        """Apply every published invalidation, reconnecting after a Redis failure."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.apply(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("cache invalidations: Redis subscription lost (%s); retrying", exc)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self._redis.aclose()
