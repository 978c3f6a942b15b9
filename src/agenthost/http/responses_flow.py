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
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import ValidationError

from agenthost import ids
from agenthost.auth.principal import Principal
from agenthost.conversation import AgentSpec
from agenthost.errors import AgentHostError, InvalidRequest
from agenthost.http import url_guard
from agenthost.http.errors import describe
from agenthost.http.run import Execution
from agenthost.protocols.responses import decode, wire
from agenthost.protocols.responses.compaction import CompactionSealer
from agenthost.protocols.responses.encode import VENDOR_TOOL_ITEM, ResponseStream, response_object
from agenthost.services import Services
from agenthost.storage.repositories import responses as repo

log = logging.getLogger(__name__)
Item = dict[str, Any]
CANCEL_POLL_SECONDS = 1.0


@dataclass(slots=True)
class LocalHistory:
    """A WebSocket connection's own responses (kept even with `store: false`)."""

    items: dict[str, list[Item]] = field(default_factory=dict)
    evicted: set[str] = field(default_factory=set)
    capacity: int = 32

    def remember(self, response_id: str, items: list[Item]) -> None:
        self.items[response_id] = items
        while len(self.items) > self.capacity:
            self.items.pop(next(iter(self.items)))

    def evict(self, response_id: str) -> None:
        self.items.pop(response_id, None)
        self.evicted.add(response_id)


_TAGS = {
    "function_call",
    "function_call_output",
    "item_reference",
    "reasoning",
    "compaction",
    "input_text",
    "input_image",
    "input_file",
    "input_video",
    "output_text",
    "refusal",
    "summary_text",
    "reasoning_text",
    "text",
    "json_object",
    "json_schema",
}


def _is_union_label(part: Any, previous: Any) -> bool:
    """Pydantic puts union member names (`constrained-str`, `message:user`, class names,
    discriminator values) into error locations; they are not request fields."""
    if not isinstance(part, str):
        return False
    if any(c in part for c in "[]-:'") or part[:1].isupper():
        return True
    return part in _TAGS and (isinstance(previous, int) or previous == "format")


def _param(loc: tuple[Any, ...]) -> str:
    kept = [p for n, p in enumerate(loc) if n == 0 or not _is_union_label(p, loc[n - 1])]
    out = ""
    for part in kept:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def invalid_body(exc: ValidationError) -> InvalidRequest:
    """A 400 naming the field; of a union's errors, the deepest one is the telling one."""
    errors = exc.errors()
    if errors[0].get("type") == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        )
    worst = max(errors, key=lambda e: len(_param(tuple(e.get("loc", ())))))
    param = _param(tuple(worst.get("loc", ())))
    if worst.get("type") == "extra_forbidden":
        return InvalidRequest(
            f"Unrecognized request argument supplied: {param}",
            code="unknown_parameter",
            param=param,
        )
    return InvalidRequest(
        f"Invalid value for '{param}': {worst.get('msg')}", code="invalid_value", param=param
    )


def previous_not_found(response_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"Previous response with id '{response_id}' not found.",
        code="previous_response_not_found",
        param="previous_response_id",
    )


def sealer(services: Services) -> CompactionSealer:
    return CompactionSealer(services.secret)


async def load_history(
    services: Services, principal: Principal, previous_id: str | None, local: LocalHistory | None
) -> list[Item]:
    if previous_id is None:
        return []
    if local is not None:
        if previous_id in local.items:
            return list(local.items[previous_id])
        if previous_id in local.evicted:
            raise previous_not_found(previous_id)
    async with services.db.session() as session:
        row = await repo.get_owned(session, previous_id, principal.user_id)
        if row is None:
            raise previous_not_found(previous_id)
        if row.status in repo.RUNNING:
            raise InvalidRequest(
                f"Previous response '{previous_id}' is still in progress.",
                code="previous_response_in_progress",
                param="previous_response_id",
            )
        items = await repo.context_items(session, row)
    return [i for i in items if i.get("type") != VENDOR_TOOL_ITEM]


async def references(
    services: Services, principal: Principal, items: list[wire.InputItem], history: list[Item]
) -> dict[str, Item]:
    """The items that `item_reference`s name: from the history, else the user's store."""
    wanted = set(decode.reference_ids(items))
    if not wanted:
        return {}
    found = {i["id"]: i for i in history if i.get("id") in wanted}
    if wanted - found.keys():
        async with services.db.session() as session:
            found.update(await repo.find_items(session, principal.user_id, wanted - found.keys()))
    return found


def require_model(model: str | None) -> str:
    if not model:
        raise InvalidRequest("'model' is required: the id of an agent.", param="model")
    return model


async def decode_input(
    services: Services,
    principal: Principal,
    body: wire.CreateResponseRequest,
    local: LocalHistory | None = None,
) -> decode.Decoded:
    history = await load_history(services, principal, body.previous_response_id, local)
    found = await references(services, principal, decode.parse_input(body.input), history)

    def open_compaction(token: str, param: str) -> list[Item]:
        # Made only when an input holds a compaction: deriving its key costs a KDF run.
        return sealer(services).open(token, principal.user_id, param)

    return decode.decode(body, history, found, open_compaction)


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
    _last_poll: float = 0.0

    @property
    def id(self) -> str:
        return str(self.stream.response["id"])

    @property
    def store(self) -> bool:
        return self.body.store is not False

    def context(self) -> list[Item]:
        """History + this input + this output: what a continuation starts from."""
        output = [i for i in self.stream.response["output"] if i.get("type") != VENDOR_TOOL_ITEM]
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
        )
        await db.write(insert.execute)

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
                await db.write(repo.finish(db.write_dialect, self.stream.response).execute)
            except Exception:
                log.exception("could not store the end of response %s", self.id)

    def fail_events(self, exc: BaseException) -> list[Item]:
        if isinstance(exc, AgentHostError):
            payload = describe(exc)[1]["error"]
        else:
            log.error("response %s failed", self.id, exc_info=exc)
            payload = {
                "type": "server_error",
                "code": "internal_error",
                "message": "Internal server error.",
                "param": None,
            }
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
        try:
            if opening:
                for event in self.stream.opening():
                    yield event
            async with aclosing(self.execution.events()) as run_events:
                async for run_event in run_events:
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
    decoded = await decode_input(services, principal, body, local)
    await url_guard.check_response_items(decoded.input_items)
    response_id = ids.prefixed("resp")
    status = "queued" if body.background else "in_progress"
    stream = ResponseStream(
        response_object(response_id, body, agent.params, status), decoded.include_tool_calls
    )
    execution = Execution(services, principal, agent, decoded.run, response_id)
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


async def run_in_background(turn: Turn) -> None:
    """The body of a background task: start, run to the end, store the outcome."""
    try:
        await turn.execution.start()
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            if isinstance(exc, Exception):
                turn.fail_events(exc)
            else:
                turn.stream.abandon("cancelled", turn.execution.state.usage)
            await turn.save_final()
        if not isinstance(exc, Exception):
            raise
        return
    turn.stream.response["status"] = "in_progress"
    async with turn.services.db.session() as session:
        await repo.set_status(session, turn.id, "in_progress")
    async with aclosing(turn.events(opening=False)) as events:
        async for _ in events:
            pass  # a failure ends as a stored `failed` response; nobody waits for an error
