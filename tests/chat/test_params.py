"""Request parameters: the whole OpenAI request schema is accepted; unsupported values are
a 400 naming the parameter; request vs agent precedence as seen by the upstream."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

import orjson
import pytest

from agenthost.protocols.chat_completions.wire import ChatCompletionRequest
from tests import spec
from tests.chat.streams import post, upstream_record, user
from tests.conftest import Tenant
from tests.support.server import Server

AGENT_INSTRUCTIONS = "You are the test agent."
AGENT_PARAMS = {"temperature": 0.2, "top_p": 0.5, "max_output_tokens": 5, "seed": 7}


def test_every_openai_request_parameter_is_known() -> None:
    assert spec.request_properties() == set(ChatCompletionRequest.model_fields)


REJECTED = [
    ({"n": 2}, "n"),
    ({"n": 0}, "n"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"function_call": "auto"}, "function_call"),
    ({"store": True}, "store"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"max_tokens": 5, "max_completion_tokens": 5}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": -1}, "top_p"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"tools": [{"type": "custom", "custom": {"name": "c"}}]}, "tools[0].type"),
    ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
    ({"frobnicate": 1}, "frobnicate"),
]


@pytest.mark.parametrize(("extra", "param"), REJECTED, ids=[p for _, p in REJECTED])
def test_unsupported_values_are_400_naming_the_parameter(
    server: Server, alice: Tenant, extra: dict[str, Any], param: str
) -> None:
    body = {"model": alice.scripted_agent, "messages": user("hi"), **extra}
    response = post(server, alice.key, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_accepted_optional_parameters_still_answer(server: Server, alice: Tenant) -> None:
    body = {
        "model": alice.scripted_agent,
        "messages": [
            {"role": "developer", "content": "be terse"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "me"},
        ],
        "n": 1,
        "logprobs": False,
        "store": False,
        "modalities": ["text"],
        "metadata": {"a": "b"},
        "user": "u-1",
        "safety_identifier": "s-1",
        "parallel_tool_calls": False,
        "response_format": {"type": "text"},
        "service_tier": "auto",
        "verbosity": "low",
        "prompt_cache_key": "k",
    }
    response = post(server, alice.key, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: hi"


@pytest.fixture(scope="module")
def tuned_agent(server: Server, alice: Tenant) -> str:
    agent = server.create_agent(
        alice.email, "fake", "upstream-model-x", "--instructions", AGENT_INSTRUCTIONS
    )
    with sqlite3.connect(server.folder / "agenthost.db", timeout=30) as conn:
        conn.execute(
            "UPDATE agents SET params = ? WHERE id = ?",
            (orjson.dumps(AGENT_PARAMS).decode(), agent),
        )
    return agent


@pytest.fixture(scope="module")
def send(server: Server, alice: Tenant, tuned_agent: str, upstream_url: str) -> Any:
    """Calls the tuned agent and returns the body the upstream received."""

    def call(**extra: Any) -> dict[str, Any]:
        marker = secrets.token_hex(6)
        messages = [{"role": "system", "content": "Request system message."}, *user(marker)]
        response = post(server, alice.key, {"model": tuned_agent, "messages": messages, **extra})
        assert response.status_code == 200, response.text
        return dict(upstream_record(upstream_url, marker)["body"])

    return call


def test_agent_instructions_come_first_then_request_system_messages(send: Any) -> None:
    body = send()
    roles = [(m["role"], m["content"]) for m in body["messages"][:2]]
    assert roles == [("system", AGENT_INSTRUCTIONS), ("system", "Request system message.")]
    assert body["messages"][2]["role"] == "user"
    assert body["model"] == "upstream-model-x"  # the agent's model, never the request's


def test_request_sampling_wins_and_agent_fills_the_gaps(send: Any) -> None:
    body = send(temperature=0.9, seed=1)
    assert body["temperature"] == 0.9 and body["seed"] == 1
    assert body["top_p"] == 0.5  # not in the request: the agent's
    defaults = send()
    assert defaults["temperature"] == 0.2 and defaults["seed"] == 7


def test_output_tokens_are_capped_by_the_agent(send: Any) -> None:
    capped = send(max_completion_tokens=100)
    assert capped.get("max_completion_tokens", capped.get("max_tokens")) == 5
    lower = send(max_tokens=3)
    assert lower.get("max_completion_tokens", lower.get("max_tokens")) == 3
    unset = send()
    assert unset.get("max_completion_tokens", unset.get("max_tokens")) == 5


def test_hints_and_caller_fields_are_forwarded(send: Any) -> None:
    body = send(
        service_tier="flex",
        prompt_cache_key="cache-1",
        verbosity="low",
        user="end-user-1",
        stop=["STOP"],
        presence_penalty=0.5,
        response_format={"type": "json_object"},
    )
    assert body["service_tier"] == "flex" and body["prompt_cache_key"] == "cache-1"
    assert body["verbosity"] == "low" and body["stop"] == ["STOP"]
    assert body["presence_penalty"] == 0.5
    assert body["response_format"] == {"type": "json_object"}
    assert body.get("user") == "end-user-1" or body.get("safety_identifier") == "end-user-1"
    assert body["stream"] is True  # upstream calls always stream, with usage
