"""`agenthost users …`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from agenthost import text_bounds
from agenthost.cli.base import CommandError, Settings, db, run, users_app
from agenthost.errors import InvalidRequest

# --- users ---------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help="admin or user.")] = "user",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Create a user."""
    from agenthost.auth.passwords import hash_password
    from agenthost.storage.repositories import balances, users

    if role not in users.ROLES:
        raise CommandError(f"role must be one of {', '.join(users.ROLES)}")
    try:
        email = text_bounds.check_email(email)
    except InvalidRequest as exc:
        raise CommandError(exc.message) from None
    password = _password_from_stdin() if password_stdin else None

    async def work(cfg: Settings) -> str:
        async with db().session() as session:
            if await users.get_by_email(session, email):
                raise CommandError(f"user {email} already exists")
            user = await users.create(
                session,
                email,
                role=role,
                password_hash=hash_password(password) if password else None,
            )
            await balances.ensure(session, user.id, cfg.balance.start_balance)
            return user.id

    typer.echo(f"created {role} {email} ({run(work)})")
    if password is None:
        typer.echo(
            f"{email} has no password and cannot sign in to the web interface until one is "
            f"set: `agenthost users set-password {email}` (reads it from stdin).",
            err=True,
        )


@users_app.command("set-password")
def users_set_password(email: str) -> None:
    """Set a user's password (read from stdin, at least 8 characters)."""
    from agenthost.auth.passwords import hash_password
    from agenthost.storage.repositories import audit, web_sessions

    hashed = hash_password(_password_from_stdin())

    async def work(_: Settings) -> int:
        async with db().session() as session:
            user = await find_user(session, email)
            user.password_hash = hashed
            audit.record(session, "user.password_set", "user", user.id, user.email)
            return await web_sessions.end_all(session, user.id)  # a new password ends them

    ended = run(work)
    typer.echo(f"password set for {email}; {ended} web session(s) ended")


@users_app.command("set-oidc-subject")
def users_set_oidc_subject(
    email: str,
    subject: Annotated[str, typer.Argument(help="The identity provider's `sub`.")] = "",
    clear: Annotated[bool, typer.Option(help="Forget the user's subject.")] = False,
) -> None:
    """Link a user to an identity-provider subject (`sub`): tokens with that subject act
    as the user. For service accounts (client credentials), whose tokens carry no email."""
    from sqlalchemy.exc import IntegrityError

    from agenthost.storage.repositories import audit

    if clear == bool(subject) or len(subject) > 255:
        raise CommandError("give a SUBJECT of at most 255 characters, or --clear")

    async def work(_: Settings) -> None:
        try:
            async with db().session() as session:
                user = await find_user(session, email)
                user.oidc_subject = subject or None
                audit.record(session, "user.oidc_subject_set", "user", user.id, user.email)
        except IntegrityError:
            raise CommandError(f"subject {subject!r} already belongs to another user") from None

    run(work)
    typer.echo(f"{email}: OIDC subject {'cleared' if clear else 'set to ' + subject}")


@users_app.command("list")
def users_list() -> None:
    """List users."""
    from agenthost.storage.repositories import users

    async def work(_: Settings) -> list[Any]:
        async with db().session() as session:
            return await users.list_all(session)

    for user in run(work):
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}")


@users_app.command("delete")
def users_delete(
    email: str,
    reassign_to: Annotated[
        str, typer.Option(help="Give the user's agents to this user (by email).")
    ] = "",
    delete_agents: Annotated[bool, typer.Option(help="Delete the user's agents.")] = False,
) -> None:
    """Delete a user: API keys revoked, sessions ended, ledger kept for accounting; their
    agents go to --reassign-to or are deleted with --delete-agents (one is required when
    they own agents)."""
    from agenthost.storage.repositories import account_removal

    if reassign_to and delete_agents:
        raise CommandError("give --reassign-to or --delete-agents, not both")

    async def work(_: Settings) -> account_removal.Removal:
        async with db().session() as session:
            user = await find_user(session, email)
            target = await find_user(session, reassign_to) if reassign_to else None
            if target is not None and target.id == user.id:
                raise CommandError("--reassign-to names the user being deleted")
            owned = await account_removal.owned_agents(session, user.id)
            if owned and target is None and not delete_agents:
                raise CommandError(
                    f"{email} owns {len(owned)} agent(s): give --reassign-to EMAIL "
                    "or --delete-agents"
                )
            return await account_removal.delete_user(session, user, reassign_to=target)

    done = run(work)
    agents = (
        f"{len(done.agents_moved)} agent(s) given to {reassign_to}"
        if reassign_to
        else f"{len(done.agents_deleted)} agent(s) deleted"
    )
    typer.echo(
        f"deleted {email}: {len(done.keys_revoked)} key(s) revoked, {agents}, "
        f"{done.sessions_ended} web session(s) ended, {done.responses_deleted} stored "
        "response(s) deleted; the ledger is kept"
    )


def _password_from_stdin() -> str:
    try:
        return text_bounds.check_password(sys.stdin.readline().rstrip("\n"))
    except InvalidRequest as exc:
        raise CommandError(exc.message) from None


async def find_user(session: Any, email: str) -> Any:
    from agenthost.storage.repositories import users

    user = await users.get_by_email(session, email)
    if user is None:
        raise CommandError(f"no user with email {email}")
    return user
