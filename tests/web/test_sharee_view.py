"""Remote access means calling, not reading: a sharee sees an agent's name and
description, never its instructions, and cannot duplicate it; /models does not reveal
who shared it."""

from __future__ import annotations

import secrets

import httpx
import openai

from tests.web.conftest import Site, csrf_of, sign_in

SECRET_INSTRUCTIONS = "the private prompt of a careful owner"


def test_a_sharee_sees_name_and_description_only(site: Site) -> None:
    owner, sharee = (f"{who}-{secrets.token_hex(3)}@example.com" for who in ("own", "sha"))
    site.add_user(owner, "owner-password-1")
    site.add_user(sharee, "sharee-password-1")
    server = site.server
    agent = server.cli(
        "agents", "create", "--owner", owner, "--name", "Shared helper", "--provider",
        "scripted", "--model", "m", "--instructions", SECRET_INSTRUCTIONS,
        "--share-remote", f"user:{sharee}",
    ).stdout.strip()  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sign_in(client, sharee, "sharee-password-1")
        page = client.get(f"/agents/{agent}")
        assert page.status_code == 200 and "Shared helper" in page.text
        assert SECRET_INSTRUCTIONS not in page.text and owner not in page.text
        assert f"/agents/{agent}/duplicate" not in page.text
        token = csrf_of(page.text)
        copied = client.post(f"/agents/{agent}/duplicate", data={"csrf_token": token})
        assert copied.status_code == 403
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sign_in(client, owner, "owner-password-1")
        assert SECRET_INSTRUCTIONS in client.get(f"/agents/{agent}").text
    key = site.create_key(sharee, "sharee-password-1")
    with openai.OpenAI(base_url=server.api, api_key=key) as sdk:
        models = sdk.models.list().data
    shared = next(m for m in models if m.id == agent)
    assert shared.owned_by == "agenthost"
