"""What an Open Responses turn starts from: `previous_response_id`'s history (from a
WebSocket connection's own cache, else from storage), the items `item_reference`s name,
and the decoded input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agenthost.auth.principal import Principal
from agenthost.errors import InvalidRequest
from agenthost.protocols.responses import decode, wire
from agenthost.protocols.responses.compaction import CompactionSealer
from agenthost.protocols.responses.encode import VENDOR_ITEMS
from agenthost.services import Services
from agenthost.storable import require_storable
from agenthost.storage.repositories import responses as repo

Item = dict[str, Any]


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
    require_storable(previous_id, "previous_response_id")
    if local is not None:
        if previous_id in local.items:
            return list(local.items[previous_id])
        if previous_id in local.evicted:
            raise previous_not_found(previous_id)
    async with services.db.session() as session:
        row = await repo.get_owned(session, previous_id, principal.user_id, principal.agent_scope)
        if row is None:
            raise previous_not_found(previous_id)
        if row.status in repo.RUNNING:
            raise InvalidRequest(
                f"Previous response '{previous_id}' is still in progress.",
                code="previous_response_in_progress",
                param="previous_response_id",
            )
        items = await repo.context_items(session, row, principal.agent_scope)
    if items is None:
        raise previous_not_found(previous_id)
    return [i for i in items if i.get("type") not in VENDOR_ITEMS]


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
            missing = wanted - found.keys()
            scope = principal.agent_scope
            found.update(await repo.find_items(session, principal.user_id, missing, scope))
    return found


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
