"""Admin → Groups and sharing an agent with a group from its page: admin-only,
CSRF-checked, audited, clear 4xx pages for bad input, and calls that follow membership."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from tests.auth.test_permissions import assert_looks_missing, chat, listed
from tests.web.conftest import Site, csrf_of, sign_in

PASSWORD = "password-groups-1"
GROUP_ID = re.compile(r'action="/admin/groups/(grp_\w+)/delete"')


@dataclass
class Person:
    email: str
    key: str


def person(site: Site, tag: str) -> Person:
    email = f"{tag}-{secrets.token_hex(3)}@example.com"
    site.add_user(email, PASSWORD)
    return Person(email, site.create_key(email, PASSWORD))


@contextmanager
def signed_in(site: Site, email: str, password: str) -> Iterator[httpx.Client]:
    with site.client() as client:
        assert sign_in(client, email, password).status_code == 303
        yield client


@contextmanager
def admin(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, site.admin_email, site.admin_password) as client:
        yield client


def post(client: httpx.Client, page: str, action: str, **form: str) -> httpx.Response:
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **form})


def group_ids(page: str) -> dict[str, str]:
    """Group name → id, from the admin page."""
    names = re.findall(r'data-group="([^"]+)"', page)
    return dict(zip(names, GROUP_ID.findall(page), strict=True))


def new_group(client: httpx.Client, name: str) -> str:
    reply = post(client, "/admin/groups", "/admin/groups", name=name)
    assert reply.status_code == 303 and reply.headers["location"].endswith("notice=created")
    return group_ids(client.get("/admin/groups").text)[name]


def audit_rows(site: Site, target: str) -> list[dict[str, object]]:
    out = site.server.cli("audit", "list", "--json", "--target", target).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_admin_creates_fills_empties_and_deletes_a_group(site: Site) -> None:
    member = person(site, "member")
    name = f"Team {secrets.token_hex(2)}"
    with admin(site) as client:
        assert 'href="/admin/groups"' in client.get("/admin/users").text  # in the admin nav
        group_id = new_group(client, name)
        added = post(
            client, "/admin/groups", f"/admin/groups/{group_id}/members", email=member.email
        )
        assert added.status_code == 303
        page = client.get("/admin/groups").text
        assert f'data-member="{member.email}"' in page and "1 member<" in page
        user_id = re.search(r'name="user_id" value="(usr_\w+)"', page)
        assert user_id is not None
        removed = post(
            client,
            "/admin/groups",
            f"/admin/groups/{group_id}/members/remove",
            user_id=user_id.group(1),
        )
        assert removed.status_code == 303
        assert f'data-member="{member.email}"' not in client.get("/admin/groups").text
        deleted = post(client, "/admin/groups", f"/admin/groups/{group_id}/delete")
        assert deleted.status_code == 303
        assert f'data-group="{name}"' not in client.get("/admin/groups").text
    rows = audit_rows(site, group_id)
    assert [r["action"] for r in rows] == [
        "group.deleted",
        "group.member_removed",
        "group.member_added",
        "group.created",
    ]
    assert {r["actor"] for r in rows} == {site.admin_email}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "1 to 100"),
        ("x" * 101, "1 to 100"),
        ("a:b", "only letters"),
        ("<b>bold</b>", "only letters"),
    ],
)
def test_a_bad_group_name_is_a_400_page_saying_why(site: Site, name: str, words: str) -> None:
    with admin(site) as client:
        reply = post(client, "/admin/groups", "/admin/groups", name=name)
    assert reply.status_code == 400 and "text/html" in reply.headers["content-type"]
    assert words in reply.text and "<b>bold</b>" not in reply.text


def test_duplicate_groups_unknown_users_and_unknown_groups_are_refused(site: Site) -> None:
    with admin(site) as client:
        group_id = new_group(client, f"dup {secrets.token_hex(2)}")
        name = next(
            n for n, i in group_ids(client.get("/admin/groups").text).items() if i == group_id
        )
        again = post(client, "/admin/groups", "/admin/groups", name=name)
        assert again.status_code == 400 and "already exists" in again.text
        nobody = post(
            client,
            "/admin/groups",
            f"/admin/groups/{group_id}/members",
            email="nobody@example.com",
        )
        assert nobody.status_code == 400 and "No user has the email" in nobody.text
        for action, form in [
            ("/admin/groups/grp_missing/members", {"email": site.admin_email}),
            ("/admin/groups/grp_missing/members/remove", {"user_id": "usr_x"}),
            ("/admin/groups/grp_missing/delete", {}),
            (f"/admin/groups/{group_id}/members/remove", {"user_id": "usr_missing"}),
        ]:
            missing = post(client, "/admin/groups", action, **form)
            assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_groups_are_for_admins_only_and_forms_need_the_csrf_token(site: Site) -> None:
    outsider = person(site, "outsider")
    with signed_in(site, outsider.email, PASSWORD) as client:
        users_page = client.get("/admin/users")
        groups_page = client.get("/admin/groups")
        assert users_page.status_code == groups_page.status_code == 403
        token = csrf_of(client.get("/agents").text)
        made = client.post("/admin/groups", data={"csrf_token": token, "name": "sneaky"})
        assert made.status_code == 403
    with site.client() as anonymous:
        assert anonymous.get("/admin/groups").status_code == 303  # to the sign-in page
    with admin(site) as client:
        forged = client.post("/admin/groups", data={"name": "forged"})
        assert forged.status_code == 403 and "Form expired" in forged.text
        page = client.get("/admin/groups").text
    assert 'data-group="sneaky"' not in page and 'data-group="forged"' not in page


def test_an_agent_shared_with_a_group_from_its_page_follows_membership(site: Site) -> None:
    member, outsider = person(site, "in"), person(site, "out")
    server = site.server
    agent = server.create_agent(site.admin_email, "scripted", "m")
    name = f"Callers {secrets.token_hex(2)}"
    with admin(site) as client:
        group_id = new_group(client, name)
        post(client, "/admin/groups", f"/admin/groups/{group_id}/members", email=member.email)
        page = client.get(f"/agents/{agent}")
        assert f'<option value="{group_id}">{name}</option>' in page.text  # the picker
        shared = post(
            client, f"/agents/{agent}", f"/agents/{agent}/shares", kind="group", subject=group_id
        )
        assert shared.status_code == 303
        assert f"Group <strong>{name}</strong>" in client.get(f"/agents/{agent}").text

        assert agent in listed(server, member.key)
        assert chat(server, member.key, agent).status_code == 200
        assert agent not in listed(server, outsider.key)
        assert_looks_missing(chat(server, outsider.key, agent), agent, server, outsider.key)

        # Removing the member on this worker drops its cache at once.
        user_id = re.search(
            rf'data-member="{re.escape(member.email)}">.*?name="user_id" value="(usr_\w+)"',
            client.get("/admin/groups").text,
            re.S,
        )
        assert user_id is not None
        post(
            client,
            "/admin/groups",
            f"/admin/groups/{group_id}/members/remove",
            user_id=user_id.group(1),
        )
        assert_looks_missing(chat(server, member.key, agent), agent, server, member.key)

        # Deleting the group deletes the share.
        post(client, "/admin/groups", f"/admin/groups/{group_id}/members", email=member.email)
        assert chat(server, member.key, agent).status_code == 200
        post(client, "/admin/groups", f"/admin/groups/{group_id}/delete")
        assert "Group <strong>" not in client.get(f"/agents/{agent}").text
        assert_looks_missing(chat(server, member.key, agent), agent, server, member.key)
    agent_rows = [r["action"] for r in audit_rows(site, agent)]
    assert "agent.shared" in agent_rows


def test_sharing_with_an_unknown_group_is_a_400_and_needs_the_share_permission(
    site: Site,
) -> None:
    agent = site.server.create_agent(site.admin_email, "scripted", "m")
    with admin(site) as client:
        reply = post(
            client, f"/agents/{agent}", f"/agents/{agent}/shares", kind="group", subject="grp_none"
        )
        assert reply.status_code == 400 and "Choose an existing group." in reply.text
    owner = person(site, "owner")  # role user: `share` is off in the default config
    own_agent = site.server.create_agent(owner.email, "scripted", "m")
    with admin(site) as client:
        group_id = new_group(client, f"perm {secrets.token_hex(2)}")
    with signed_in(site, owner.email, PASSWORD) as client:
        assert 'id="share-group"' not in client.get(f"/agents/{own_agent}").text
        refused = post(
            client,
            f"/agents/{own_agent}",
            f"/agents/{own_agent}/shares",
            kind="group",
            subject=group_id,
        )
        assert refused.status_code == 403
