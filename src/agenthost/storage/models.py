"""SQLAlchemy 2 models. Constraint names follow `naming_convention` so migrations are stable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The identity provider's `sub` (one issuer is configured), bound at first OIDC match.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    # Set when an admin deletes the user: the row stays for the ledger (accounting), its
    # email is rewritten so the address is free again and nobody can sign in as it.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    """An API key, stored only as its SHA-256 and an 8-character display prefix."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(8))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_scope: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # A spending cap in credits within `budget_period` (day | week | month; None: ever).
    max_credits: Mapped[int | None] = mapped_column(BigInteger, default=None)
    budget_period: Mapped[str | None] = mapped_column(String(8), default=None)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mcp_servers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # ["provider:model", …] tried in order when the primary fails before its first token.
    fallbacks: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AgentGrant(Base):
    """Remote access to an agent for a user (`subject` = user id), a role, a group
    (`subject` = group id) or everyone."""

    __tablename__ = "agent_grants"
    __table_args__ = (
        UniqueConstraint("agent_id", "kind", "subject", name="uq_agent_grants_subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # user | role | group | public
    subject: Mapped[str] = mapped_column(String(320))  # user id | role name | group id | "*"


class Group(Base):
    """A named set of users that agents can be shared with. `source` says who keeps its
    members: `local` (admins, CLI and web) or `oidc` (the identity provider, at sign-in)."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(8), default="local")  # local | oidc
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    """One user in one group; goes with either."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Balance(Base):
    """A user's credits (1,000,000 credits = 1 USD) as an exact integer."""

    __tablename__ = "balances"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    last_refill_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BalanceHold(Base):
    """Credits a running request holds against its user's balance (see
    billing/reservations.py): shared by every worker through the database."""

    __tablename__ = "balance_holds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column()


class Transaction(Base):
    """One balance change: a model call's charge, a grant or a refill."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # usage | grant | refill
    api_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    agent_id: Mapped[str | None] = mapped_column(String(32), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    # The provider that served the call (a fallback's, when one served it).
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    rates: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    credits: Mapped[int] = mapped_column(BigInteger)  # signed change of the balance
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageRollup(Base):
    """Usage summed per UTC day, user, key, agent and model, kept up to date in the
    settle's own transaction: spend reports and key budgets read these, not the ledger.
    A browser call has no key: its `api_key_id` is '' (so the unique key matches it)."""

    __tablename__ = "usage_rollups"
    __table_args__ = (
        UniqueConstraint(
            "day", "user_id", "api_key_id", "agent_id", "model", name="uq_usage_rollups_group"
        ),
        Index("ix_usage_rollups_key_day", "api_key_id", "day"),
        Index("ix_usage_rollups_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC
    user_id: Mapped[str] = mapped_column(String(32))
    api_key_id: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)  # spent, positive


class StoredResponse(Base):
    """An Open Responses response kept for `previous_response_id` and retrieval."""

    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_user_created", "user_id", "created_at"),
        Index("ix_responses_status_updated", "status", "updated_at"),  # the lease sweeper
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(32))
    api_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16))
    previous_response_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The agent that answered last (after any handoff): a continuation runs with it.
    answered_by: Mapped[str | None] = mapped_column(String(32), default=None)
    input_items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebSession(Base):
    """A signed-in browser session. The cookie carries a random nonce (signed); the row is
    keyed by the nonce's SHA-256, and a session is valid only while its row exists, so
    signing out, "sign out everywhere", a password change or disabling the user ends it
    at once on every worker."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class ResponseEvents(Base):
    """A batch of the stream events of a background response created with `stream: true`,
    kept so `GET /responses/{id}?stream=true&starting_after=N` can replay them on any
    worker. Rows go with their response."""

    __tablename__ = "response_events"

    response_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    first_sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_sequence: Mapped[int] = mapped_column(Integer)
    events: Mapped[list[Any]] = mapped_column(JSON)


class RolePermission(Base):
    """An admin's override of `interface.remote_agents` for one role (from the web UI)."""

    __tablename__ = "role_permissions"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    use: Mapped[bool] = mapped_column(Boolean)
    create: Mapped[bool] = mapped_column(Boolean)
    share: Mapped[bool] = mapped_column(Boolean)
    public: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserSecret(Base):
    """A credential a user keeps, sealed at rest: `kind` "secret" for MCP headers
    (`{secret.NAME}`), "provider_key" for a user-provided provider (`name` = provider)."""

    __tablename__ = "user_secrets"
    __table_args__ = (
        UniqueConstraint("user_id", "kind", "name", name="uq_user_secrets_user_kind_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="secret", server_default="secret")
    name: Mapped[str] = mapped_column(String(64))
    sealed_value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """A security-relevant change: who did what to what, when, with before/after where it
    applies. Written in the change's own transaction; the product never updates or
    deletes these rows."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))  # an email, `cli:NAME` or `system`
    action: Mapped[str] = mapped_column(String(64))  # e.g. api_key.created
    target_kind: Mapped[str] = mapped_column(String(32))  # user | api_key | agent | ...
    target_id: Mapped[str] = mapped_column(String(320))
    target: Mapped[str] = mapped_column(String(320))  # what a reader recognises it by
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class AgentLink(Base):
    """An edge of an agent graph: `agent_id` calls `target_id` as a sub-agent (a tool) or
    hands the conversation to it (`kind` = subagent | handoff), in `position` order."""

    __tablename__ = "agent_links"
    __table_args__ = (
        UniqueConstraint("agent_id", "kind", "target_id", name="uq_agent_links_edge"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)
