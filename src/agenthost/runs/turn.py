"""One Open Responses turn, shared by JSON, SSE, WebSocket and background modes.

`prepare` resolves the agent, loads the history of `previous_response_id` (from the
connection-local cache of a WebSocket, else from storage) and decodes the request.
`Turn.events()` yields spec events; whatever way the turn ends (finished, failed, the
client left, cancelled) the stored response is finalised once, never left in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio

from agenthost import ids
from agenthost.auth.principal import Principal
from agenthost.conversation import AgentSpec
from agenthost.errors import AgentHostError, InvalidRequest
from agenthost.events import RunFinished
from agenthost.protocols.errors import describe_any
from agenthost.protocols.responses import decode, wire
from agenthost.protocols.responses.encode import VENDOR_ITEMS, ResponseStream, response_object
from agenthost.runs import url_guard
from agenthost.runs.execution import Execution
from agenthost.runs.graph_access import continuing_agent
from agenthost.runs.history import LocalHistory, decode_input
from agenthost.services import Services
from agenthost.storage.repositories import responses as repo

log = logging.getLogger(__name__)

SERVED_BY_FIELD = "agenthost"
Item = dict[str, Any]
CANCEL_POLL_SECONDS = 1.0


def require_model(model: str | None) -> str:
    if not model:
        raise InvalidRequest("'model' is required: the id of an agent.", param="model")
    return model


@dataclass
class Turn:
    """A response being produced: its request, run, stream state and storage."""

    services: Services
    principal: Principal
    body: wire.CreateResponseRequest
    agent: AgentSpec
    decoded: decode.Decoded
    stream: ResponseStream
    execution: Execution
    stored: bool = False
    insert_at_end: bool = False
    cancelled: bool = False
    error: BaseException | None = None
    answered_by: str | None = None  # the agent that answered last (agent graphs)
    _last_poll: float = 0.0

    @property
    def id(self) -> str:
        return str(self.stream.response["id"])

    @property
    def store(self) -> bool:
        return self.body.store is not False

    def context(self) -> list[Item]:
        """History + this input + this output: what a continuation starts from."""
        output = [i for i in self.stream.response["output"] if i.get("type") not in VENDOR_ITEMS]
        return self.decoded.history + self.decoded.input_items + output

    async def save_new(self) -> None:
        if not self.store:
            return
        await self._insert()
        self.stored = True

    async def _insert(self) -> None:
        db = self.services.db
        insert = repo.create(
            db.write_dialect,
            body=self.stream.response,
            user_id=self.principal.user_id,
            agent_id=self.agent.id,
            api_key_id=self.principal.key_id,
            input_items=self.decoded.input_items,
            answered_by=self.answered_by,
        )
        await db.write(insert.execute)
        if self.services.leases is not None and self.stream.response["status"] in repo.RUNNING:
            self.services.leases.hold(self.id)

    async def save_final(self) -> None:
        if not (self.stored or self.insert_at_end):
            return
        with anyio.CancelScope(shield=True):
            try:
                if self.insert_at_end:
                    self.insert_at_end = False
                    await self._insert()
                    self.stored = True
                    return
                db = self.services.db
                final = repo.finish(db.write_dialect, self.stream.response, self.answered_by)
                await db.write(final.execute)
            except Exception:
                log.exception("could not store the end of response %s", self.id)
            finally:
                if self.services.leases is not None:
                    self.services.leases.release(self.id)

    def fail_events(self, exc: BaseException) -> list[Item]:
        if not isinstance(exc, AgentHostError):
            log.error("response %s failed", self.id, exc_info=exc)
        payload = describe_any(exc)[1]["error"]
        return self.stream.on_error(payload, self.execution.state.usage)

    async def _cancel_requested(self) -> bool:
        """Background runs re-read their stored status now and then: another worker may
        have received the cancel."""
        now = time.monotonic()
        if not self.body.background or now - self._last_poll < CANCEL_POLL_SECONDS:
            return False
        self._last_poll = now
        async with self.services.db.session() as session:
            return await repo.status_of(session, self.id) == "cancelled"

    async def events(self, opening: bool = True) -> AsyncGenerator[Item, None]:
        """Spec events of the whole turn; `start()` of the execution must have succeeded."""
        served_by = self.execution.state.served_by
        if served_by:
            # A vendor field beside the spec's (the response object allows more): which
            # upstream served the first model call; `model` stays the agent's id.
            self.stream.response[SERVED_BY_FIELD] = {"served_by": served_by}
        try:
            if opening:
                for event in self.stream.opening():
                    yield event
            async with aclosing(self.execution.events()) as run_events:
                async for run_event in run_events:
                    if isinstance(run_event, RunFinished):
                        self.answered_by = run_event.agent_id
                        if run_event.agent_id:  # the vendor field says who answered last
                            vendor = self.stream.response.setdefault(SERVED_BY_FIELD, {})
                            vendor["answered_by"] = run_event.agent_id
                    for event in self.stream.on_event(run_event):
                        yield event
                    if await self._cancel_requested():
                        self.cancelled = True
                        break
        except Exception as exc:
            self.error = exc
            for event in self.fail_events(exc):
                yield event
        finally:
            with anyio.CancelScope(shield=True):
                await self.execution.close()
                if not self.stream.finished:
                    # A background run has no client to lose: it stops only when cancelled.
                    cancelled = self.cancelled or bool(self.body.background)
                    reason = "cancelled" if cancelled else "interrupted"
                    self.stream.abandon(reason, self.execution.state.usage)
                await self.save_final()


async def prepare(
    services: Services,
    principal: Principal,
    body: wire.CreateResponseRequest,
    local: LocalHistory | None = None,
) -> Turn:
    """Everything up to (not including) the first model call."""
    agent = await services.access.resolve(principal, require_model(body.model))
    agent = await continuing_agent(services, principal, agent, body.previous_response_id)
    decoded = await decode_input(services, principal, body, local)
    await url_guard.check_response_items(decoded.input_items)
    response_id = ids.prefixed("resp")
    status = "queued" if body.background else "in_progress"
    execution = Execution(services, principal, agent, decoded.run, response_id)
    response = response_object(
        response_id, body, agent.params, status, execution.request.max_output_tokens
    )
    stream = ResponseStream(response, decoded.include_tool_calls)
    return Turn(services, principal, body, agent, decoded, stream, execution)


async def begin(turn: Turn, *, store_at_end: bool = False) -> None:
    """Start the run (errors before the first token are raised) and store the response,
    or with `store_at_end` (nobody can know its id before it ends: a plain JSON
    request) only once it ends, in one write."""
    if store_at_end or not turn.store:
        await turn.execution.start()
        turn.insert_at_end = store_at_end and turn.store  # save_final writes the row, once
        return
    await turn.execution.admit()
    # The row is written while the upstream works on the first token, not after it.
    saving = asyncio.ensure_future(turn.save_new())
    try:
        await turn.execution.prime()
        await asyncio.shield(saving)  # a client leaving now must not cut the write short
    except BaseException:
        with anyio.CancelScope(shield=True):
            await turn.execution.close()
            await _unsave(turn, saving)
        raise


async def _unsave(turn: Turn, saving: asyncio.Future[None]) -> None:
    """The turn failed before its first token: the client gets an HTTP error and no id,
    so the row written meanwhile goes."""
    with contextlib.suppress(Exception):
        await saving
    if not turn.stored:
        return
    turn.stored = False
    try:
        async with turn.services.db.session() as session:
            await repo.delete_owned(session, turn.id, turn.principal.user_id)
    except Exception:
        log.exception("could not remove response %s after its run failed", turn.id)


async def final_response(turn: Turn) -> dict[str, Any]:
    """Drain a started turn and return the finished response object. A failure after the
    first token is raised (the stored copy says `failed`): a JSON client gets an HTTP error."""
    async with aclosing(turn.events(opening=False)) as events:
        async for _ in events:
            pass
    if turn.error is not None:
        raise turn.error
    return turn.stream.response
