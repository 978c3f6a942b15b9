"""The playground as a chat, in real Chromium: answers rendered as sanitised Markdown,
server-side tool calls shown collapsed, a stop button that cancels the upstream call, and
conversations (chains of stored responses) kept across reloads, reopened and deleted."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import Server, running_server
from tests.web.chromium import CHROMIUM, SHOTS
from tests.web.test_browser import signed_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt: chromium)"),
]

FAKE_MCP = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")
EMAIL, PASSWORD = "chat@example.com", "chat-password-1"


@dataclass
class Chat:
    server: Server
    upstream_url: str
    agents: dict[str, str]


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Chat]:
    overrides = {
        "mcp_servers": {
            "math": {"transport": "stdio", "command": sys.executable, "args": [FAKE_MCP, "stdio"]}
        }
    }
    folder = tmp_path_factory.mktemp("playground")
    with running_server(folder, upstream_url, overrides) as server:
        server.cli("users", "add", EMAIL, "--password-stdin", input=PASSWORD + "\n")
        agents = {
            "echo": server.create_agent(EMAIL, "scripted", "m"),
            "tools": server.create_agent(EMAIL, "scripted", "m", "--mcp", "math"),
            "fake": server.create_agent(EMAIL, "fake", "gpt-4o-mini"),
        }
        closer = server.cli(
            *("agents", "create", "--owner", EMAIL, "--name", "Closer"),
            *("--provider", "fake", "--model", "gpt-4o-mini"),
        ).stdout.strip()
        agents["front"] = server.cli(
            *("agents", "create", "--owner", EMAIL, "--name", "Front"),
            *("--provider", "fake", "--model", "gpt-4o-mini", "--handoffs", closer),
        ).stdout.strip()
        agents["closer"] = closer
        yield Chat(server, upstream_url, agents)


@pytest.fixture
def page(browser: Browser, chat: Chat) -> Iterator[Page]:
    found = signed_in_page(browser, chat.server.url, EMAIL, PASSWORD)
    yield found
    found.context.close()


def say(page: Page, agent: str, text: str) -> None:
    page.get_by_label("Agent").select_option(agent)
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def api(page: Page, method: str, path: str) -> dict[str, Any]:
    """A call from the page itself, as the playground makes them (cookie + CSRF header)."""
    result: dict[str, Any] = page.evaluate(
        """async ([method, path]) => {
            const reply = await fetch(path, {method, credentials: "same-origin",
                headers: {"X-CSRF-Token": window.agenthost.csrfToken()}});
            return {status: reply.status, body: await reply.text()};
        }""",
        [method, path],
    )
    return result


def test_answers_are_markdown_and_nothing_in_them_runs(page: Page, chat: Chat) -> None:
    page.goto("/playground")
    text = (
        "**bold** and `co<de>`\n\n- one\n- two\n\n```\n<b>kept as text</b>\n```\n"
        '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script>\n'
        "[bad](javascript:window.pwned=3) [good](https://example.com/x)"
    )
    say(page, chat.agents["echo"], text)
    answer = page.locator(".msg.assistant .body")
    expect(answer.locator("strong")).to_have_text("bold")
    expect(answer.locator("code").first).to_have_text("co<de>")
    expect(answer.locator("ul > li")).to_have_count(2)
    expect(answer.locator("pre code")).to_have_text("<b>kept as text</b>")
    assert answer.locator("img, script, b").count() == 0
    links = answer.locator("a")
    expect(links).to_have_count(1)
    assert links.get_attribute("href") == "https://example.com/x"
    assert "[bad]" not in answer.inner_text() and "bad" in answer.inner_text()
    assert page.evaluate("window.pwned") is None
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator(".msg.assistant button.copy").click()
    expect(page.locator(".msg.assistant button.copy")).to_have_text("Copied")
    page.screenshot(path=str(SHOTS / "playground-markdown.png"), full_page=True)


def test_tool_calls_show_collapsed_with_arguments_and_result(page: Page, chat: Chat) -> None:
    page.goto("/playground")
    say(page, chat.agents["tools"], '!call math__add {"a": 2, "b": 40}')
    expect(page.locator(".msg.assistant .body")).to_have_text("result: 42")
    tool = page.locator(".msg.tool details")
    expect(tool).to_have_count(1)
    assert tool.get_attribute("open") is None  # collapsed by default
    expect(tool.locator("summary")).to_have_text("math__add")
    tool.locator("summary").click()
    expect(tool.locator("pre").nth(0)).to_contain_text('"a": 2')
    expect(tool.locator("pre").nth(1)).to_have_text("42")
    page.screenshot(path=str(SHOTS / "playground-tools.png"), full_page=True)


def test_stop_cancels_the_upstream_call(page: Page, chat: Chat) -> None:
    page.goto("/playground")
    marker = "m" + secrets.token_hex(5)
    say(page, chat.agents["fake"], f"{marker}\n!stall 30000")
    expect(page.locator(".msg.assistant .body")).not_to_be_empty()  # the first token came
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#pg-status")).to_contain_text("Stopped")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    deadline = time.monotonic() + 10
    outcome = None
    while time.monotonic() < deadline:
        seen = httpx.get(chat.upstream_url.removesuffix("/v1") + "/_requests", timeout=10).json()
        mine = [r for r in seen if marker in json.dumps(r.get("body"))]
        outcome = mine[0]["outcome"] if mine else None
        if outcome != "pending":
            break
        time.sleep(0.1)
    assert outcome == "disconnected"  # long before the stall would have ended


def test_conversations_survive_a_reload_continue_and_delete(page: Page, chat: Chat) -> None:
    page.goto("/playground")
    first = "first " + secrets.token_hex(3)
    say(page, chat.agents["echo"], first)
    expect(page.locator(".msg.assistant .body")).to_have_text(f"echo: {first}")
    say(page, chat.agents["echo"], "second")
    expect(page.locator(".msg.assistant .body").nth(1)).to_have_text("echo: second")

    page.reload()
    listed = page.locator("#pg-conversations li")
    expect(listed.filter(has_text=first)).to_have_count(1)
    expect(page.locator(".msg")).to_have_count(0)
    listed.filter(has_text=first).get_by_role("button", name=first, exact=True).click()
    expect(page.locator(".msg.user .body")).to_have_text([first, "second"])
    expect(page.locator(".msg.assistant .body")).to_have_text([f"echo: {first}", "echo: second"])

    say(page, chat.agents["echo"], "third")
    expect(page.locator(".msg.assistant .body").nth(2)).to_have_text("echo: third")
    kept = page.evaluate("Object.entries(localStorage)")
    (conversation,) = [c for _, v in kept for c in json.loads(v) if c["title"] == first]
    ids = conversation["responses"]
    assert len(ids) == 3
    latest = json.loads(api(page, "GET", f"/api/agents/v1/responses/{ids[2]}")["body"])
    assert latest["previous_response_id"] == ids[1]  # the reopened chain went on
    page.screenshot(path=str(SHOTS / "playground-conversations.png"), full_page=True)

    listed.filter(has_text=first).get_by_role("button", name="Delete conversation").click()
    expect(listed.filter(has_text=first)).to_have_count(0)
    for response_id in ids:
        assert api(page, "GET", f"/api/agents/v1/responses/{response_id}")["status"] == 404
    page.reload()
    expect(page.locator("#pg-conversations li").filter(has_text=first)).to_have_count(0)


def test_a_handoff_shows_collapsed_and_the_answer_names_the_agent(page: Page, chat: Chat) -> None:
    page.goto("/playground")
    say(page, chat.agents["front"], "!call transfer_to_closer {}")
    answer = page.locator(".msg.assistant")
    expect(answer.locator(".body")).not_to_be_empty()
    expect(answer.locator(".who")).to_have_text("Agent · Closer")
    hop = page.locator(".msg.agent details")
    expect(hop.locator("summary")).to_have_text("Handed over to Closer")
    assert hop.get_attribute("open") is None
    page.screenshot(path=str(SHOTS / "playground-handoff.png"), full_page=True)
    # Reopened from the stored response, it reads the same.
    page.reload()
    page.locator("#pg-conversations li").first.get_by_role("button").first.click()
    expect(page.locator(".msg.assistant .who")).to_have_text("Agent · Closer")
    expect(page.locator(".msg.agent summary")).to_have_text("Handed over to Closer")
