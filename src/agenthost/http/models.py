"""GET /models: the agents this key may call, as OpenAI models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.conversation import AgentSpec
from agenthost.http.deps import PrincipalDep, ServicesDep
from agenthost.http.errors import ERROR_RESPONSES
from agenthost.http.streaming import json_response

router = APIRouter()


OWNED_BY = "agenthost"


def _model(agent: AgentSpec, created: int = 0) -> dict[str, Any]:
    # Not the owner's internal id: a caller of a shared agent may not learn who shared it.
    return {"id": agent.id, "object": "model", "created": created, "owned_by": OWNED_BY}


_MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}
_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _MODEL_SCHEMA}},
}


def _responses(schema: dict[str, Any], text: str) -> dict[int | str, dict[str, Any]]:
    ok = {"description": text, "content": {"application/json": {"schema": schema}}}
    return {200: ok, **ERROR_RESPONSES}


@router.get(
    "/models",
    summary="List the agents this key may call",
    responses=_responses(_LIST_SCHEMA, "The callable agents as OpenAI models"),
)
async def list_models(principal: PrincipalDep, services: ServicesDep) -> Response:
    agents = await services.access.list_callable(principal)
    return json_response({"object": "list", "data": [_model(a) for a in agents]})


@router.get(
    "/models/{model_id}",
    summary="Retrieve one callable agent as a model",
    responses=_responses(_MODEL_SCHEMA, "The agent as an OpenAI model"),
)
async def get_model(model_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    agent = await services.access.resolve(principal, model_id)
    return json_response(_model(agent))
