"""The media URLs of a request, named by their request field, checked by `url_policy`.

Each interface names its fields its own way, so the walk lives here, next to the wire
formats; the rule itself (what a URL may point at) is `runtime.url_policy`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agenthost.protocols.chat_completions import wire as chat_wire
from agenthost.runtime.url_policy import check_urls


def chat_urls(body: chat_wire.ChatCompletionRequest) -> Iterator[tuple[str, str]]:
    """`(param, url)` for every image URL in a Chat Completions request."""
    for i, message in enumerate(body.messages):
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if isinstance(part, chat_wire.ImageContent):
                yield f"messages[{i}].content[{j}].image_url.url", part.image_url.url


def _part_urls(parts: list[Any], where: str) -> Iterator[tuple[str, str]]:
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            continue
        if part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
            yield f"{where}[{j}].image_url", part["image_url"]
        elif part.get("type") == "input_file" and isinstance(part.get("file_url"), str):
            yield f"{where}[{j}].file_url", part["file_url"]


def response_item_urls(items: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """`(param, url)` for every image and file URL in Open Responses input items."""
    for i, item in enumerate(items):
        for field in ("content", "output"):
            parts = item.get(field)
            if isinstance(parts, list):
                yield from _part_urls(parts, f"input[{i}].{field}")


async def check_chat(body: chat_wire.ChatCompletionRequest) -> None:
    await check_urls(chat_urls(body))


async def check_response_items(items: list[dict[str, Any]]) -> None:
    await check_urls(response_item_urls(items))
