"""Bounded input on every web form (and the CLI paths that save the same values): an
over-long or invalid value is a 400 page with the form, a field error and the other
values kept; nothing is saved and nothing is a 500."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.web.conftest import Site, csrf_of, sign_in

AGENT = {"name": "Bounded", "provider": "scripted", "model": "scripted-model"}


def fresh_user(site: Site, role: str = "user") -> tuple[str, str]:
    email, password = f"bounds-{secrets.token_hex(4)}@example.com", "bounds-password-1"
    site.add_user(email, password, role)
    return email, password


@pytest.fixture
def admin(site: Site) -> Iterator[httpx.Client]:
    with site.client() as client:
        sign_in(client, site.admin_email, site.admin_password)
        yield client


def post_form(client: httpx.Client, page: str, action: str, form: dict[str, str]) -> httpx.Response:
    return client.post(action, data={"csrf_token": csrf_of(client.get(page).text), **form})


def new_agent(client: httpx.Client, **fields: str) -> str:
    made = post_form(client, "/agents/new", "/agents/new", {**AGENT, **fields})
    assert made.status_code == 303, made.text[:500]
    return str(made.headers["location"]).split("/agents/")[1].split("?")[0]


def field_error(page: str, field_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', page)
    assert found, f"no error under #{field_id}"
    return html.unescape(found.group(1))


TOO_LONG = [
    ("name", "n" * 201, "at most 200"),
    ("description", "d" * 2_001, "at most 2,000"),
    ("instructions", "i" * 100_001, "at most 100,000"),
    ("model", "m" * 201, "at most 200"),
]


@pytest.mark.parametrize(("field", "value", "bound"), TOO_LONG, ids=[t[0] for t in TOO_LONG])
def test_agent_form_refuses_an_over_long_field_and_keeps_the_others(
    admin: httpx.Client, field: str, value: str, bound: str
) -> None:
    typed = {**AGENT, "name": f"Kept {secrets.token_hex(3)}", "description": "kept text"}
    typed["instructions"] = "kept instructions"
    refused = post_form(admin, "/agents/new", "/agents/new", {**typed, field: value})
    assert refused.status_code == 400, refused.status_code
    assert refused.headers["content-type"].startswith("text/html")
    assert bound in field_error(refused.text, field)
    for other in ("name", "description", "instructions"):
        if other != field:
            assert html.escape(typed[other]) in refused.text, other
    assert typed["name"] not in admin.get("/agents").text  # nothing saved

    agent_id = new_agent(admin, name=f"Edited {secrets.token_hex(3)}")
    edit = post_form(admin, f"/agents/{agent_id}", f"/agents/{agent_id}", {**typed, field: value})
    assert edit.status_code == 400 and bound in field_error(edit.text, field)
    assert typed["name"] not in admin.get("/agents").text


def test_agent_form_takes_values_at_their_bounds(admin: httpx.Client) -> None:
    name = "N" * 194 + secrets.token_hex(3)
    agent_id = new_agent(admin, name=name, description="d" * 2_000, instructions="i" * 100_000)
    page = admin.get(f"/agents/{agent_id}").text
    assert name in page and "i" * 100_000 in page


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("x@", "Not a valid email"),
        ("a@b", "Not a valid email"),
        ("two@@example.com", "Not a valid email"),
        ("x" * 250 + "@example.com", "too long"),
    ],
)
def test_admin_add_user_refuses_invalid_emails_keeping_the_role(
    admin: httpx.Client, email: str, problem: str
) -> None:
    form = {"email": email, "password": "a-good-password", "role": "admin"}
    refused = post_form(admin, "/admin/users", "/admin/users", form)
    assert refused.status_code == 400
    assert problem in field_error(refused.text, "new-email")
    assert '<option value="admin" selected>' in refused.text  # the role as chosen
    assert f'data-user="{html.escape(email)}"' not in refused.text


def test_admin_add_user_accepts_a_real_address_and_bounds_the_password(
    admin: httpx.Client,
) -> None:
    email = f"first.last+{secrets.token_hex(3)}@sub.example.co"
    long_password = {"email": email, "password": "p" * 1_025, "role": "user"}
    refused = post_form(admin, "/admin/users", "/admin/users", long_password)
    assert refused.status_code == 400 and "1,024" in field_error(refused.text, "new-password")
    assert f'value="{email}"' in refused.text  # the email is kept
    made = post_form(admin, "/admin/users", "/admin/users", {**long_password, "password": "p" * 8})
    assert made.status_code == 303
    assert f'data-user="{email}"' in admin.get("/admin/users").text


def test_grant_note_over_500_characters_is_refused(site: Site, admin: httpx.Client) -> None:
    email, _ = fresh_user(site)
    page = admin.get("/admin/users").text
    user_id = page.split(f'data-user="{email}"')[1].split("/admin/users/")[1].split("/")[0]
    form = {"credits": "5", "note": "n" * 501}
    refused = post_form(admin, "/admin/users", f"/admin/users/{user_id}/credits", form)
    assert refused.status_code == 400 and "at most 500" in refused.text
    assert "\tgrant\t+5" not in site.server.cli("balance", "show", email).stdout


def test_key_form_refuses_a_long_name_keeping_the_other_values(site: Site) -> None:
    with site.client() as client:
        sign_in(client, *fresh_user(site))
        form = {"name": "k" * 201, "expires": "30", "max_credits": "5000", "budget_period": "week"}
        refused = post_form(client, "/settings/keys", "/settings/keys", form)
        assert refused.status_code == 400
        assert "at most 200" in field_error(refused.text, "key-name")
        assert '<option value="30" selected>' in refused.text
        assert '<option value="week" selected>' in refused.text
        assert 'value="5000"' in refused.text
        assert "No keys yet." in client.get("/settings/keys").text


def test_secret_form_errors_name_the_field(site: Site) -> None:
    with site.client() as client:
        sign_in(client, *fresh_user(site))
        long_name = post_form(
            client, "/settings/secrets", "/settings/secrets", {"name": "s" * 65, "value": "v"}
        )
        assert long_name.status_code == 400
        assert "1 to 64" in field_error(long_name.text, "secret-name")
        long_value = post_form(
            client, "/settings/secrets", "/settings/secrets", {"name": "tok", "value": "v" * 4097}
        )
        assert long_value.status_code == 400
        assert "4096" in field_error(long_value.text, "secret-value")
        assert 'value="tok"' in long_value.text and "v" * 4097 not in long_value.text
        assert "No secrets yet." in client.get("/settings/secrets").text


def test_login_with_an_absurd_email_is_refused_before_the_throttle_counts_it(
    site: Site,
) -> None:
    # Counted, the sixth try would be a 429 (five per account): the throttle's keys stay
    # small, and no megabyte password is hashed.
    with site.client() as client:
        for _ in range(6):
            reply = sign_in(client, "e" * 5_000 + "@example.com", "x" * 50_000)
            assert reply.status_code == 400 and "Wrong email or password" in reply.text


def test_cli_keeps_the_same_bounds(site: Site) -> None:
    server = site.server
    email, _ = fresh_user(site)
    base = ["agents", "create", "--owner", email, "--provider", "scripted", "--model", "m"]
    long_name = server.cli(*base, "--name", "n" * 201, check=False)
    assert long_name.returncode != 0 and "--name" in long_name.stderr
    assert "at most 200" in long_name.stderr
    long_instructions = server.cli(
        *base, "--name", "ok", "--instructions", "i" * 100_001, check=False
    )
    assert long_instructions.returncode != 0 and "--instructions" in long_instructions.stderr
    for bad in ("a@b", "x@", "x@tor.onion"):
        added = server.cli("users", "add", bad, check=False)
        assert added.returncode != 0 and "Not a valid email" in added.stderr
    # Internal mail domains are real addresses in an organisation.
    for good in (f"it-{secrets.token_hex(3)}@corp.local", f"qa-{secrets.token_hex(3)}@lab.test"):
        assert server.cli("users", "add", good).stdout.startswith(f"created user {good} (usr_")
    key = server.cli("keys", "create", email, "--name", "k" * 201, check=False)
    assert key.returncode != 0 and "--name" in key.stderr
