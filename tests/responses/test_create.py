"""POST /responses without streaming: the response object, request fields, rejections."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import Tenant
from tests.responses.conftest import Api, marker
from tests.support.server import Server

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 fake").decode()


@pytest.fixture(scope="module")
def instructed_agent(server: Server, alice: Tenant) -> str:
    return server.create_agent(alice.email, "fake", "gpt-4o-mini", "--instructions", "AGENT RULES")


def test_basic_response_with_sdk(api: Api) -> None:
    response = api.sdk().responses.create(model=api.tenant.scripted_agent, input="hello there")
    assert response.status == "completed"
    assert response.output_text == "echo: hello there"
    assert response.id.startswith("resp_")
    assert response.model == api.tenant.scripted_agent
    assert response.output[0].id.startswith("msg_")
    assert response.usage is not None and response.usage.output_tokens == 3
    data = api.create({"model": api.tenant.scripted_agent, "input": "hi"})
    assert data["completed_at"] is not None and data["error"] is None
    assert data["usage"]["input_tokens_details"] == {"cached_tokens": 0}
    assert data["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}


def test_usage_reports_cached_and_reasoning_tokens(api: Api) -> None:
    data = api.create(
        {"model": api.tenant.fake_agent, "input": "!cached 7\n!reasoning think hard\n!text ok"}
    )
    usage = data["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 7
    assert usage["output_tokens_details"]["reasoning_tokens"] == 2
    reasoning, message = data["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "think hard"}]
    assert message["content"][0]["text"] == "ok"


def test_instructions_follow_the_agents_own(api: Api, instructed_agent: str) -> None:
    tag = marker()
    api.create(
        {
            "model": instructed_agent,
            "instructions": "REQUEST RULES",
            "input": [
                {"type": "message", "role": "system", "content": "SYSTEM ITEM"},
                {"role": "developer", "content": [{"type": "input_text", "text": "DEV"}]},
                {"role": "user", "content": tag},
            ],
        }
    )
    sent = api.upstream_request(tag)["messages"]
    texts = [str(m["content"]) for m in sent]
    assert [m["role"] for m in sent][:2] == ["system", "system"]
    assert "AGENT RULES" in texts[0] and "REQUEST RULES" in texts[1]
    assert "SYSTEM ITEM" in texts[2] and "DEV" in texts[3] and tag in texts[4]


def test_assistant_phase_is_accepted_and_replayed(api: Api) -> None:
    tag = marker()
    data = api.create(
        {
            "model": api.tenant.fake_agent,
            "input": [
                {"role": "user", "content": "first"},
                {
                    "type": "message",
                    "role": "assistant",
                    "phase": "commentary",
                    "content": [{"type": "output_text", "text": "thinking aloud"}],
                },
                {"role": "assistant", "phase": "final_answer", "content": "the answer"},
                {"role": "user", "content": tag},
            ],
        }
    )
    assert data["status"] == "completed"
    sent = api.upstream_request(tag)["messages"]
    assistant = [m for m in sent if m["role"] == "assistant"]
    assert "thinking aloud" in str(assistant) and "the answer" in str(assistant)


def test_sampling_and_limits_reach_the_upstream(api: Api) -> None:
    tag = marker()
    data = api.create(
        {
            "model": api.tenant.fake_agent,
            "input": tag,
            "temperature": 0.3,
            "top_p": 0.5,
            "max_output_tokens": 64,
            "metadata": {"k": "v"},
            "text": {
                "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}
            },
        }
    )
    sent = api.upstream_request(tag)
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.5
    assert 64 in (sent.get("max_completion_tokens"), sent.get("max_tokens"))
    assert sent["response_format"]["type"] == "json_schema"
    assert data["temperature"] == 0.3 and data["max_output_tokens"] == 64
    assert data["metadata"] == {"k": "v"} and data["text"]["format"]["name"] == "out"


def test_max_output_tokens_makes_an_incomplete_response(api: Api) -> None:
    data = api.create(
        {"model": api.tenant.scripted_agent, "input": "!tokens 40", "max_output_tokens": 16}
    )
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["output"][0]["status"] == "incomplete"


def test_image_and_file_inputs_reach_the_upstream(api: Api) -> None:
    tag = marker()
    content = [
        {"type": "input_text", "text": tag},
        {"type": "input_image", "image_url": PNG, "detail": "low"},
        {"type": "input_file", "filename": "a.pdf", "file_data": PDF},
    ]
    api.create({"model": api.tenant.fake_agent, "input": [{"role": "user", "content": content}]})
    parts = api.upstream_request(tag)["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}} in parts
    files = [p for p in parts if p["type"] == "file"]
    assert files and files[0]["file"]["file_data"] == PDF


def test_allowed_tools_is_a_hard_constraint(api: Api) -> None:
    tag = marker()
    tools = [
        {"type": "function", "name": "forbidden", "parameters": {"type": "object"}},
        {"type": "function", "name": "allowed", "parameters": {"type": "object"}},
    ]
    data = api.create(
        {
            "model": api.tenant.fake_agent,
            "input": f"{tag}\n!call forbidden {{}}",
            "tools": tools,
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "function", "name": "allowed"}],
            },
        }
    )
    offered = [t["function"]["name"] for t in api.upstream_request(tag)["tools"]]
    assert offered == ["allowed"]
    assert [i["type"] for i in data["output"]] == ["message"]
    assert data["tool_choice"]["type"] == "allowed_tools" and len(data["tools"]) == 2


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"user": "x"}, "user"),
        ({"conversation": "c"}, "conversation"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"truncation": "auto"}, "truncation"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 5}, "max_output_tokens"),
        ({"stream_options": {"include_obfuscation": False}}, "stream_options"),
        ({"input": [{"type": "bogus"}]}, "input[0]"),
        ({"metadata": {"k": "v" * 600}}, "metadata.k"),
    ],
)
def test_unsupported_or_unknown_fields_are_400_naming_them(
    api: Api, extra: dict[str, object], param: str
) -> None:
    reply = api.post({"model": api.tenant.scripted_agent, "input": "hi", **extra})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_missing_model_and_unknown_agent(api: Api, bob: Tenant) -> None:
    reply = api.post({"input": "hi"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "model"
    reply = api.post({"model": bob.scripted_agent, "input": "hi"})
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "model_not_found"


def test_failure_before_the_first_token_is_an_http_error(api: Api) -> None:
    reply = api.post({"model": api.tenant.scripted_agent, "input": "!fail before"})
    assert reply.status_code == 503
    assert reply.json()["error"]["type"] == "upstream_error"
