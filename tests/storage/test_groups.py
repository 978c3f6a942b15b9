"""Groups on both backends: names, members, visibility through group grants, deletion,
and the identity provider's memberships kept apart from admins' groups."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import delete, select

from agenthost.errors import InvalidRequest, NotFound
from agenthost.storage.database import Database
from agenthost.storage.models import AuditEvent, Group, User
from agenthost.storage.repositories import agents, groups, users
from tests.storage.test_repositories import new_user


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


async def members_of(db: Database, name: str) -> set[str]:
    async with db.session() as session:
        group = await groups.find(session, name)
        return set(await groups.member_ids(session, group.id))


async def oidc_groups_of(db: Database, user_id: str) -> set[str]:
    async with db.session() as session:
        listed = await groups.list_all(session)
    return {g.name for g in listed if g.source == "oidc" and user_id in dict(g.members)}


@pytest.mark.parametrize(
    "name",
    ["a", "Engineering", "Équipe données", "team-1.ops_on/call", "x" * 100, "数据团队"],
)
def test_good_names_pass_unchanged(name: str) -> None:
    assert groups.check_name(name) == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "1 to 100"),
        ("x" * 101, "1 to 100"),
        (" lead", "start or end"),
        ("trail ", "start or end"),
        ("a:b", "only letters"),
        ("tab\there", "only letters"),
        ("semi;colon", "only letters"),
        ("new\nline", "only letters"),
        ("<script>", "only letters"),
    ],
)
def test_bad_names_are_refused_saying_why(name: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        groups.check_name(name)
    assert words in caught.value.message and caught.value.code == "invalid_group_name"


def test_names_are_normalised_to_nfc() -> None:
    decomposed = "E\u0301quipe"  # E + combining acute: the same name as "Équipe"
    assert groups.check_name(decomposed) == "\u00c9quipe"


async def test_create_refuses_a_taken_name_and_find_refuses_an_unknown_one(db: Database) -> None:
    name = unique("ops")
    async with db.session() as session:
        made = await groups.create(session, name)
        assert made.source == "local" and made.id.startswith("grp_")
    with pytest.raises(InvalidRequest, match="already exists"):
        async with db.session() as session:
            await groups.create(session, name)
    with pytest.raises(NotFound, match="no group"):
        async with db.session() as session:
            await groups.find(session, unique("missing"))


async def test_a_group_grant_makes_an_agent_visible_to_members_only(db: Database) -> None:
    owner, member, outsider = [await new_user(db) for _ in range(3)]
    name = unique("sales")
    async with db.session() as session:
        group = await groups.create(session, name)
        agent = await agents.create(session, owner_id=owner, name="g", provider="x", model="m")
        await agents.add_grant(session, agent.id, "group", group.id)
        member_row = await users.get(session, member)
        assert member_row is not None
        assert await groups.add_member(session, group, member_row)
        assert not await groups.add_member(session, group, member_row)  # already in

    async def sees(user_id: str) -> bool:
        async with db.session() as session:
            listed = {a.id for a in await agents.list_callable(session, user_id, "user")}
            single = await agents.get_callable(session, agent.id, user_id, "user")
        assert (single is not None) == (agent.id in listed)
        return agent.id in listed

    assert await sees(member) and not await sees(outsider)
    async with db.session() as session:
        assert await groups.remove_member(session, group, member_row)
        assert not await groups.remove_member(session, group, member_row)
    assert not await sees(member)


async def test_deleting_a_group_deletes_its_grants_and_memberships(db: Database) -> None:
    owner, member = await new_user(db), await new_user(db)
    name = unique("gone")
    async with db.session() as session:
        group = await groups.create(session, name)
        agent = await agents.create(session, owner_id=owner, name="d", provider="x", model="m")
        await agents.add_grant(session, agent.id, "group", group.id)
        await agents.add_grant(session, agent.id, "user", member)
        row = await users.get(session, member)
        assert row is not None
        await groups.add_member(session, group, row)
    async with db.session() as session:
        assert await groups.delete_group(session, group) == [agent.id]
    async with db.session() as session:
        assert await groups.get(session, group.id) is None
        assert await groups.member_ids(session, group.id) == []
        kinds = {g.kind for g in await agents.list_grants(session, agent.id)}
        assert kinds == {"user"}  # the other grant stays
        audit = await session.execute(
            select(AuditEvent).where(AuditEvent.target_id == group.id).order_by(AuditEvent.id)
        )
        actions = [e.action for e in audit.scalars()]
    assert actions == ["group.created", "group.member_added", "group.deleted"]


async def test_sync_creates_adds_and_removes_only_identity_provider_groups(
    db: Database,
) -> None:
    user_id = await new_user(db)
    local_name, keep, drop, new = (unique(p) for p in ("local", "keep", "drop", "new"))
    async with db.session() as session:
        local = await groups.create(session, local_name)
        user = await users.get(session, user_id)
        assert user is not None
        await groups.add_member(session, local, user)

    async with db.session() as session:
        assert await groups.sync_oidc_groups(session, user_id, [keep, drop, keep])
    assert await oidc_groups_of(db, user_id) == {keep, drop}

    # The IdP now says: keep, new, the local group's name, and a name no group can have.
    async with db.session() as session:
        changed = await groups.sync_oidc_groups(session, user_id, [keep, new, local_name, "a:b"])
    assert changed
    assert await oidc_groups_of(db, user_id) == {keep, new}
    assert await members_of(db, local_name) == {user_id}  # local membership untouched
    async with db.session() as session:
        made = await groups.get_by_name(session, new)
        assert made is not None and made.source == "oidc"
        assert (await groups.get_by_name(session, "a:b")) is None
        assert not await groups.sync_oidc_groups(session, user_id, [new, keep])  # no change

    # An empty list leaves no IdP group, still never the local one.
    async with db.session() as session:
        assert await groups.sync_oidc_groups(session, user_id, [])
    assert await oidc_groups_of(db, user_id) == set()
    assert await members_of(db, local_name) == {user_id}
    async with db.session() as session:
        kept = await groups.get_by_name(session, drop)
    assert kept is not None  # emptied groups stay (they may hold grants)


async def test_sync_does_not_touch_other_users_or_a_local_group_removed_from_the_idp(
    db: Database,
) -> None:
    one, other = await new_user(db), await new_user(db)
    shared = unique("shared")
    async with db.session() as session:
        await groups.sync_oidc_groups(session, one, [shared])
        await groups.sync_oidc_groups(session, other, [shared])
        await groups.sync_oidc_groups(session, one, [])
    assert await members_of(db, shared) == {other}


async def test_members_of_identity_provider_groups_are_not_edited_by_hand(
    db: Database,
) -> None:
    user_id = await new_user(db)
    name = unique("idp")
    async with db.session() as session:
        await groups.sync_oidc_groups(session, user_id, [name])
    with pytest.raises(InvalidRequest, match="identity provider"):
        async with db.session() as session:
            group = await groups.find(session, name)
            user = await users.get(session, user_id)
            assert user is not None
            await groups.remove_member(session, group, user)
    assert await members_of(db, name) == {user_id}


async def test_sync_for_an_unknown_user_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        async with db.session() as session:
            await groups.sync_oidc_groups(session, "usr_missing", ["x"])


async def test_a_deleted_user_leaves_their_groups(db: Database) -> None:
    user_id = await new_user(db)
    name = unique("cascade")
    async with db.session() as session:
        group = await groups.create(session, name)
        user = await users.get(session, user_id)
        assert user is not None
        await groups.add_member(session, group, user)
    async with db.session() as session:
        await session.execute(delete(User).where(User.id == user_id))
    assert await members_of(db, name) == set()
    async with db.session() as session:
        assert (await session.execute(select(Group).where(Group.id == group.id))).first()
