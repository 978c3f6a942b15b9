"""Settings → API keys: create (shown once), list, revoke; base URL and snippets.

The user's secrets for tool servers (views/user_secrets.py) are a section of this page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.responses import Response

from agenthost import text_bounds
from agenthost.auth.api_keys import generate_key
from agenthost.errors import InvalidRequest
from agenthost.storage.models import utcnow
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import api_keys as key_repo
from agenthost.web import key_stats, reveal
from agenthost.web.context import FormDep, UserDep, Visit, redirect, render
from agenthost.web.context import field as form_field
from agenthost.web.errors import forbidden, not_found
from agenthost.web.snippets import api_base_url, snippets

router = APIRouter()
EXPIRY_CHOICES = {"7": 7, "30": 30, "90": 90, "365": 365, "never": None}
BUDGET_PERIODS = {"lifetime": None, "day": "day", "week": "week", "month": "month"}


def _require_use(visit: Visit) -> None:
    if not visit.perms.use:
        raise forbidden("Remote agent access is not enabled for your role.")


@dataclass(slots=True)
class KeyForm:
    """The create-a-key form as typed, and its field errors."""

    name: str = ""
    expires: str = "90"
    agents: list[str] = field(default_factory=list)
    max_credits: str = ""
    budget_period: str = "lifetime"
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, form: FormData) -> KeyForm:
        return cls(
            name=form_field(form, "name"),
            expires=form_field(form, "expires", "90"),
            agents=[str(a) for a in form.getlist("agents") if str(a)],
            max_credits=form_field(form, "max_credits"),
            budget_period=form_field(form, "budget_period", "lifetime"),
        )


async def settings_page(
    visit: Visit, revealed: str | None = None, key_form: KeyForm | None = None
) -> Response:
    user = visit.me
    async with visit.services.db.session() as session:
        keys = await key_repo.list_for_user(session, user.id)
        agents = await agent_repo.list_callable(session, user.id, user.role)
        stats = await key_stats.of_keys(session, keys)
    own = [a for a in agents if a.owner_id == user.id] or agents
    sample = own[0].id if own else "agent_YOUR_AGENT_ID"
    base = api_base_url(visit.services.settings.public_base_url, str(visit.request.base_url))
    return render(
        visit,
        "keys.html",
        status=400 if key_form and key_form.errors else 200,
        keys=keys,
        stats=stats,
        budget_periods=list(BUDGET_PERIODS),
        agents=agents,
        revealed=revealed,
        key_form=key_form or KeyForm(),
        base_url=base,
        snippets=snippets(base, sample),
        sample_agent=sample,
        expiry_choices=list(EXPIRY_CHOICES),
        now=utcnow(),
    )


@router.get("/settings")
async def settings_home(visit: UserDep) -> Response:
    return redirect(visit, "/settings/keys" if visit.perms.use else "/settings/sessions")


KEYS_PAGE = "/settings/keys"


@router.get("/settings/keys")
async def keys_page(visit: UserDep) -> Response:
    """Shows a key just created once (post/redirect/get, `web/reveal.py`), so a reload
    neither makes a second key nor shows it again."""
    _require_use(visit)
    revealed = reveal.take(visit, "key")
    page = await settings_page(visit, revealed=revealed)
    if reveal.COOKIE in visit.request.cookies:
        reveal.forget(page, KEYS_PAGE)
    return page


def _check_key_form(typed: KeyForm) -> int | None:
    """Fills `typed.errors`; the budget in credits when one was given."""
    try:
        text_bounds.check_name(typed.name, label="The key name")
    except InvalidRequest as exc:
        typed.errors["name"] = exc.message
    if typed.expires not in EXPIRY_CHOICES:
        typed.errors["expires"] = "Choose an expiry from the list."
    budget = typed.max_credits
    max_credits = int(budget) if budget.isdigit() and len(budget) <= 15 else None
    if budget and (max_credits is None or max_credits < 1):
        typed.errors["max_credits"] = "The budget is a whole number of credits above 0."
    if typed.budget_period not in BUDGET_PERIODS:
        typed.errors["budget_period"] = "Choose a budget period from the list."
    return max_credits


@router.post("/settings/keys")
async def create_key(visit: UserDep, form: FormDep) -> Response:
    _require_use(visit)
    typed = KeyForm.of(form)
    max_credits = _check_key_form(typed)
    if typed.errors:
        return await settings_page(visit, key_form=typed)
    days, period = EXPIRY_CHOICES[typed.expires], BUDGET_PERIODS[typed.budget_period]
    plain, prefix, key_hash = generate_key()
    async with visit.services.db.session() as session:
        if typed.agents:
            callable_ids = {
                a.id for a in await agent_repo.list_callable(session, visit.me.id, visit.me.role)
            }
            if not set(typed.agents) <= callable_ids:
                typed.errors["agents"] = "The scope may only name agents you can call."
                return await settings_page(visit, key_form=typed)
        await key_repo.create(
            session,
            user_id=visit.me.id,
            name=typed.name,
            prefix=prefix,
            key_hash=key_hash,
            expires_at=utcnow() + timedelta(days=days) if days else None,
            agent_scope=typed.agents or None,
            max_credits=max_credits,
            budget_period=period if max_credits is not None else None,
        )
    response = redirect(visit, "/settings/keys?notice=created")
    reveal.seal(visit, response, "key", KEYS_PAGE, plain)
    return response


@router.post("/settings/keys/{key_id}/revoke")
async def revoke_key(key_id: str, visit: UserDep) -> Response:
    async with visit.services.db.session() as session:
        key = await key_repo.get(session, key_id)
        if key is None or key.user_id != visit.me.id:
            raise not_found("key")
        await key_repo.revoke(session, key_id)
    visit.services.keys.invalidate(key_id=key_id)
    return redirect(visit, "/settings/keys?notice=revoked")
