"""Azure OpenAI (`type: azure_openai`) against the fake upstream's Azure addresses: the
deployment in the path, `api-version` in the query, the key as `api-key` (never as a
bearer token), streamed and plain answers, tool calls, and the content filter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import UPSTREAM_KEY, Server, running_server

AZURE_KEY = "azure-key-0123456789abcdef"


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Server]:
    endpoint = upstream_url.removesuffix("/v1")
    providers = {
        "azure": {
            "type": "azure_openai",
            "endpoint": endpoint,
            "api_key": AZURE_KEY,
            "api_version": "2024-10-21",
            "deployments": {"gpt-4o-mini": "prod-mini"},
            "max_retries": 0,
        },
        "azure-noversion-key": {
            "type": "azure_openai",
            "endpoint": endpoint,
            "max_retries": 0,
        },
    }
    folder = tmp_path_factory.mktemp("azure")
    with running_server(folder, None, {"providers": providers}) as server:
        server.add_user("az@example.com")
        yield server


def agent(server: Server, provider: str = "azure", model: str = "gpt-4o-mini") -> str:
    return server.create_agent("az@example.com", provider, model)


def last_request(upstream_url: str, marker: str) -> dict[str, Any]:
    seen = httpx.get(upstream_url.removesuffix("/v1") + "/_requests", timeout=10).json()
    found: dict[str, Any] = next(r for r in reversed(seen) if marker in str(r.get("body")))
    return found


@pytest.fixture(scope="module")
def client(azure: Server) -> Iterator[openai.OpenAI]:
    key = azure.create_key("az@example.com")
    with openai.OpenAI(base_url=azure.api, api_key=key, max_retries=0) as made:
        yield made


def test_calls_go_to_the_deployment_with_the_api_key_header(
    azure: Server, client: openai.OpenAI, upstream_url: str
) -> None:
    mapped, unmapped = agent(azure), agent(azure, model="gpt-4.1")
    reply = client.chat.completions.create(
        model=mapped, messages=[{"role": "user", "content": "!text az-one"}]
    )
    assert reply.choices[0].message.content == "az-one"
    seen = last_request(upstream_url, "az-one")
    assert seen["path"] == "/openai/deployments/prod-mini/chat/completions"
    assert seen["headers"]["api-key"] == AZURE_KEY
    assert "authorization" not in seen["headers"]  # the key is never a bearer token
    stream = client.chat.completions.create(
        model=unmapped, messages=[{"role": "user", "content": "!text az-two"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "az-two"
    seen = last_request(upstream_url, "az-two")
    assert seen["path"] == "/openai/deployments/gpt-4.1/chat/completions"


def test_tool_calls_and_responses_work_through_azure(azure: Server, client: openai.OpenAI) -> None:
    mapped = agent(azure)
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = client.responses.create(
        model=mapped,
        input='!call lookup {"q": 1}',
        tools=tools,  # type: ignore[arg-type]
    )
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model=mapped,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
        tools=tools,  # type: ignore[arg-type]
    )
    assert second.output_text == "tool said: 42"


def test_the_content_filter_is_a_400_naming_what_was_filtered(
    azure: Server, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=agent(azure), messages=[{"role": "user", "content": "!contentfilter"}]
        )
    error = caught.value.response.json()["error"]
    assert error["code"] == "content_filter" and "hate: medium" in error["message"]
    cut = client.chat.completions.create(
        model=agent(azure),
        messages=[{"role": "user", "content": "!text partly\n!finish content_filter"}],
    )
    assert cut.choices[0].finish_reason == "content_filter"


def test_a_missing_key_is_a_credentials_error_without_secrets(
    azure: Server, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=agent(azure, "azure-noversion-key"),
            messages=[{"role": "user", "content": "hi"}],
        )
    assert caught.value.status_code == 502
    assert "credentials rejected" in caught.value.response.json()["error"]["message"]
    assert AZURE_KEY not in azure.log() and UPSTREAM_KEY not in azure.log()


def test_an_endpoint_that_is_not_a_url_stops_the_server(tmp_path: Any) -> None:
    bad = {"providers": {"azure": {"type": "azure_openai", "endpoint": "NAME.openai.azure.com"}}}
    with running_server(tmp_path, None, bad, start=False) as server:
        done = server.cli("serve", "--port", "1", check=False)
    assert done.returncode != 0 and "providers.azure.endpoint" in done.stderr
