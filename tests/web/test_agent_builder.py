"""The agent builder: typed parameter fields beside the raw JSON, and MCP tools picked one
by one from the server's listing, with a warning for a server that cannot be reached.
Form posts over HTTP for the rules; Chromium for the slider and the schema fields."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.support.server import Server, free_port, running_server
from tests.web.chromium import CHROMIUM, SHOTS
from tests.web.conftest import csrf_of, sign_in
from tests.web.test_browser import signed_in_page

FAKE_MCP = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")
EMAIL, PASSWORD = "builder@example.com", "builder-password-1"
MATH_TOOLS = {"add", "echo", "fail", "hang", "crash", "whoami", "pid"}


@dataclass
class Builder:
    server: Server

    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            assert sign_in(client, EMAIL, PASSWORD).status_code == 303
            yield client

    def params_of(self, agent_id: str) -> dict[str, Any]:
        with sqlite3.connect(self.server.folder / "agenthost.db") as db:
            (raw,) = db.execute("SELECT params FROM agents WHERE id = ?", (agent_id,)).fetchone()
        return dict(json.loads(raw))


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Builder]:
    overrides = {
        "mcp_servers": {
            "math": {"transport": "stdio", "command": sys.executable, "args": [FAKE_MCP, "stdio"]},
            "down": {"transport": "streamable_http", "url": f"http://127.0.0.1:{free_port()}/mcp"},
        }
    }
    folder = tmp_path_factory.mktemp("builder")
    with running_server(folder, upstream_url, overrides) as server:
        server.cli("users", "add", EMAIL, "--password-stdin", input=PASSWORD + "\n")
        yield Builder(server)


BASE = {"name": "Builder", "provider": "scripted", "model": "m", "params": "{}"}


def post_new(client: httpx.Client, form: dict[str, Any]) -> httpx.Response:
    token = csrf_of(client.get("/agents/new").text)
    return client.post("/agents/new", data={"csrf_token": token, **form})


def created_id(reply: httpx.Response) -> str:
    assert reply.status_code == 303, reply.text[-3000:]
    found = re.match(r"/agents/(agent_[\w-]+)\?", reply.headers["location"])
    assert found, reply.headers["location"]
    return found.group(1)


def field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    assert found, f"no error under {field}"
    return html.unescape(found.group(1))


def test_typed_fields_are_saved_as_parameters_beside_the_raw_json(builder: Builder) -> None:
    with builder.client() as client:
        form = {
            **BASE,
            "p_temperature": "0.4",
            "p_max_output_tokens": "300",
            "p_reasoning_effort": "low",
            "p_format_type": "json_schema",
            "p_schema_name": "answer",
            "p_schema": '{"type": "object", "properties": {"a": {"type": "string"}}}',
            "p_strict": "on",
            "params": '{"top_p": 0.9}',
        }
        agent = created_id(post_new(client, form))
        assert builder.params_of(agent) == {
            "top_p": 0.9,
            "temperature": 0.4,
            "max_output_tokens": 300,
            "reasoning_effort": "low",
            "response_format": {
                "type": "json_schema",
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                "name": "answer",
                "strict": True,
            },
        }
        page = client.get(f"/agents/{agent}").text
    # Shown again in their fields; the raw JSON keeps only the rest.
    assert 'name="p_temperature" type="number"' in page and 'value="0.4"' in page
    assert '<option value="low" selected>' in page
    raw_json = re.search(r'<textarea id="params"[^>]*>([^<]*)</textarea>', page)
    assert raw_json and json.loads(html.unescape(raw_json.group(1))) == {"top_p": 0.9}


@pytest.mark.parametrize(
    ("typed", "field", "says"),
    [
        ({"p_temperature": "hot"}, "p_temperature", "number from 0 to 2"),
        ({"p_temperature": "2.5"}, "p_temperature", "temperature"),
        ({"p_max_output_tokens": "0"}, "p_max_output_tokens", "max_output_tokens"),
        ({"p_max_output_tokens": "1e99"}, "p_max_output_tokens", "whole number"),
        ({"p_reasoning_effort": "enormous"}, "p_reasoning_effort", "reasoning_effort"),
        ({"p_format_type": "json_schema", "p_schema": "{"}, "p_schema", "not valid JSON"),
        ({"p_format_type": "json_schema", "p_schema": "[]"}, "p_schema", "JSON object"),
        ({"p_format_type": "yaml"}, "p_format_type", "response_format"),
        ({"p_temperature": "0.5", "params": '{"temperature": 0.2}'}, "params", "own field"),
    ],
)
def test_a_bad_typed_field_is_refused_under_it_and_nothing_is_saved(
    builder: Builder, typed: dict[str, str], field: str, says: str
) -> None:
    name = "refused-" + field
    with builder.client() as client:
        reply = post_new(client, {**BASE, "name": name, **typed})
        assert reply.status_code == 400
        assert says in field_error(reply.text, field)
        listed = client.get("/agents").text
    assert name not in listed


def test_the_form_lists_each_tool_and_warns_of_an_unreachable_server(builder: Builder) -> None:
    with builder.client() as client:
        page = client.get("/agents/new").text
    shown = set(re.findall(r'name="mcp_tool\.math" value="([^"]+)" checked', page))
    assert shown == MATH_TOOLS  # all ticked on a new agent
    assert re.search(r'<p class="warning" role="status">down: unreachable', page)
    assert 'name="mcp_tool.down"' not in page


def _tool_form(ticked: set[str], servers: tuple[str, ...] = ("math",)) -> list[tuple[str, str]]:
    form = [(k, v) for k, v in BASE.items()]
    form += [("mcp_servers", s) for s in servers]
    form += [("mcp_listed", "math")]
    form += [("mcp_shown.math", t) for t in sorted(MATH_TOOLS)]
    form += [("mcp_known.math", t) for t in sorted(MATH_TOOLS)]
    form += [("mcp_tool.math", t) for t in sorted(ticked)]
    return form


def _post_pairs(client: httpx.Client, pairs: list[tuple[str, str]]) -> httpx.Response:
    token = csrf_of(client.get("/agents/new").text)
    body = httpx.QueryParams([("csrf_token", token), *pairs])
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return client.post("/agents/new", content=str(body), headers=headers)


def test_ticking_some_tools_saves_them_and_all_of_them_saves_no_restriction(
    builder: Builder,
) -> None:
    with builder.client() as client:
        some = created_id(_post_pairs(client, _tool_form({"echo", "add"})))
        every = created_id(_post_pairs(client, _tool_form(MATH_TOOLS)))
        none = _post_pairs(client, _tool_form(set()))
        unticked_server = created_id(_post_pairs(client, _tool_form({"echo"}, servers=())))
        page = client.get(f"/agents/{some}").text
    assert builder.params_of(some) == {"mcp_tools": {"math": ["add", "echo"]}}
    assert builder.params_of(every) == {}
    assert none.status_code == 400
    assert "at least one tool of 'math'" in field_error(none.text, "mcp_servers")
    assert builder.params_of(unticked_server) == {}
    assert set(re.findall(r'name="mcp_tool\.math" value="([^"]+)" checked', page)) == {
        "add",
        "echo",
    }


def test_picks_in_the_raw_json_and_the_ticks_may_not_both_name_a_server(
    builder: Builder,
) -> None:
    pairs = [p for p in _tool_form({"echo"}) if p[0] != "params"]
    pairs.append(("params", '{"mcp_tools": {"math": ["add"]}}'))
    with builder.client() as client:
        reply = _post_pairs(client, pairs)
    assert reply.status_code == 400
    assert "ticked above" in field_error(reply.text, "params")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)")
def test_slider_and_schema_fields_in_chromium(builder: Builder, browser: Browser) -> None:
    page = signed_in_page(browser, builder.server.url, EMAIL, PASSWORD)
    page.goto("/agents/new")
    page.get_by_label("Name", exact=True).fill("Slider")
    page.get_by_label("Provider").select_option("scripted")
    page.get_by_label("Model").fill("m")
    schema = page.locator("#schema-fields")
    expect(schema).to_be_hidden()
    page.get_by_label("Response format").select_option("json_schema")
    expect(schema).to_be_visible()
    page.get_by_label("Schema (JSON)").fill('{"type": "object"}')
    page.get_by_label("Temperature slider").fill("1.5")
    expect(page.locator("#p_temperature")).to_have_value("1.5")
    page.get_by_label("math", exact=True).check()
    page.locator("details.tools summary").first.click()
    page.get_by_label("crash", exact=True).uncheck()
    page.screenshot(path=str(SHOTS / "agent-builder.png"), full_page=True)
    page.get_by_role("button", name="Create agent").click()
    page.wait_for_url(re.compile(r"/agents/agent_"))
    agent = page.url.split("/agents/")[1].split("?")[0]
    page.context.close()
    params = builder.params_of(agent)
    assert params["temperature"] == 1.5
    assert params["response_format"] == {"type": "json_schema", "schema": {"type": "object"}}
    assert sorted(params["mcp_tools"]["math"]) == sorted(MATH_TOOLS - {"crash"})
