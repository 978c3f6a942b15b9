"""`agenthost groups …`: groups of users that agents can be shared with
(`agents create … --share-remote group:NAME`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agenthost.cli.base import CommandError, Settings, announce, db, groups_app, run
from agenthost.cli.users import find_user

NameArgument = Annotated[
    str, typer.Argument(help="1-100 letters, digits, spaces and . _ - / (case matters).")
]
EmailArgument = Annotated[str, typer.Argument(help="The user's email.")]


@groups_app.command("create")
def groups_create(name: NameArgument) -> None:
    """Create a group (its members are kept here and in the web interface)."""
    from agenthost.storage.repositories import groups

    async def work(_: Settings) -> str:
        async with db().session() as session:
            return (await groups.create(session, name)).name

    typer.echo(f"created group {run(work)}")


@groups_app.command("add")
def groups_add(name: NameArgument, email: EmailArgument) -> None:
    """Add a user to a group."""
    from agenthost.auth.invalidations import agents_of_user
    from agenthost.storage.repositories import groups

    async def work(cfg: Settings) -> str:
        from sqlalchemy.exc import IntegrityError

        try:
            async with db().session() as session:
                group = await groups.find(session, name)
                user = await find_user(session, email)
                added = await groups.add_member(session, group, user)
        except IntegrityError:  # deleted by someone else meanwhile
            raise CommandError(f"group {name!r} was deleted meanwhile") from None
        if not added:
            return f"{user.email} is already in group {group.name}"
        await announce(cfg, [agents_of_user(user.id)])
        return f"added {user.email} to group {group.name}"

    typer.echo(run(work))


@groups_app.command("remove")
def groups_remove(name: NameArgument, email: EmailArgument) -> None:
    """Take a user out of a group."""
    from agenthost.auth.invalidations import agents_of_user
    from agenthost.storage.repositories import groups

    async def work(cfg: Settings) -> str:
        async with db().session() as session:
            group = await groups.find(session, name)
            user = await find_user(session, email)
            if not await groups.remove_member(session, group, user):
                raise CommandError(f"{user.email} is not in group {group.name}")
        await announce(cfg, [agents_of_user(user.id)])
        return f"removed {user.email} from group {group.name}"

    typer.echo(run(work))


@groups_app.command("list")
def groups_list() -> None:
    """List groups: name, source (local or oidc), member count and members."""
    from agenthost.storage.repositories import groups

    async def work(_: Settings) -> list[Any]:
        async with db().session() as session:
            return await groups.list_all(session)

    for group in run(work):
        emails = ",".join(email for _, email in group.members) or "-"
        typer.echo(f"{group.name}\t{group.source}\t{len(group.members)}\t{emails}")


@groups_app.command("delete")
def groups_delete(name: NameArgument) -> None:
    """Delete a group, its memberships and the agent shares made to it."""
    from agenthost.auth.invalidations import agents_of_user
    from agenthost.storage.repositories import groups

    async def work(cfg: Settings) -> str:
        async with db().session() as session:
            group = await groups.find(session, name)
            members = await groups.member_ids(session, group.id)
            unshared = await groups.delete_group(session, group)
        await announce(cfg, [agents_of_user(user_id) for user_id in members])
        return (
            f"deleted group {group.name} ({len(members)} member(s); "
            f"unshared from {len(unshared)} agent(s))"
        )

    typer.echo(run(work))
