"""Tables. These are the storage shapes; API input/output shapes live in web/schemas.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


# Ids are INTEGER columns: 32-bit on PostgreSQL (SQLite would take 64). Numbers from outside
# (an id in a URL, ?after=) are bounded by this before they reach a query, which would fail.
MAX_ID = 2**31 - 1


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    # Stable numeric uid used inside every workspace and on the home directory: the
    # directory's uidNumber for LDAP users, else allocated once.
    uid: Mapped[int] = mapped_column(unique=True)
    # The primary gid: LDAP's gidNumber (never assumed equal to the uid); None: the uid.
    gid: Mapped[int | None] = mapped_column(Integer)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # "member" or "instructor" (instructors run workshops); admins are is_admin.
    role: Mapped[str] = mapped_column(String(20), default="member", server_default="member")
    disabled: Mapped[bool] = mapped_column(default=False)
    # Where the account comes from: "local", "ldap", "oidc" (the two made and updated at each
    # login) or "workshop" (made by a workshop, which also deletes it).
    source: Mapped[str] = mapped_column(String(20), default="local", server_default="local")
    # The identity provider's stable id of the person ("sub"); None for other sources.
    subject: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    # The directory's groups at the last login: [{"name": "phd", "gid": 5002}, ...]
    groups: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def primary_gid(self) -> int:
        return self.uid if self.gid is None else self.gid

    workspaces: Mapped[list[Workspace]] = relationship(back_populates="owner")


class RetiredUser(Base):
    """A deleted account: its uid is never given to anyone again (files on the lab's NFS may
    still carry it), and who deleted it, when."""

    __tablename__ = "retired_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    uid: Mapped[int] = mapped_column(Integer, index=True)
    source: Mapped[str] = mapped_column(String(20))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_by: Mapped[str] = mapped_column(String(100))


class Token(Base):
    """A session cookie or an API token; only its SHA-256 is stored."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # "session" or "api"
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SshKey(Base):
    """A public key that logs its user in to the SSH servers of their workspaces (through
    the tunnel). Stored as "type base64"; the comment the user gave is its name."""

    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("user_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(16384))
    fingerprint: Mapped[str] = mapped_column(String(64))  # "SHA256:..." as ssh-keygen -l
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortShare(Base):
    """A port of a workspace shared wider than with its owner (labspace.sharing). A port
    with no row is private; the row goes with its workspace."""

    __tablename__ = "port_shares"
    __table_args__ = (UniqueConstraint("workspace_id", "port"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(20))  # "authenticated" or "public"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    # The validated TemplateSpec as JSON: one shape for input, storage and output.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # For built-in templates: the digest of the spec labspace itself last wrote. While the
    # stored spec still has it, no admin edited the template and a new release may update it.
    builtin_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(30))
    template: Mapped[str] = mapped_column(String(30))
    # The resource profile it starts with ("": the template's own limits).
    profile: Mapped[str] = mapped_column(String(30), default="", server_default="")
    state: Mapped[str] = mapped_column(String(10), default="stopped")
    message: Mapped[str] = mapped_column(String(2000), default="")
    container_id: Mapped[str | None] = mapped_column(String(80))
    # Where the proxy sends the app's traffic, e.g. http://172.18.0.5:8888 (set while running).
    target: Mapped[str | None] = mapped_column(String(200))
    # Only the proxy and the app know this; it makes the container's port useless to others.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship(back_populates="workspaces")
    events: Mapped[list[WorkspaceEvent]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", order_by="WorkspaceEvent.id"
    )


class WorkspaceInstance(Base):
    """One start of a workspace: what was started, where it runs and how it is reached.

    A start records what it was made from (``spec``: image and its digest, app settings with
    the secret header rule, limits, mounts), so editing a template later changes nothing for a
    running workspace; the proxy routes from ``endpoints`` and this snapshot, never from
    templates. ``handle`` and ``runtime_state`` are the backend's own (JupyterHub's spawner
    state); ``node`` and ``devices`` say where it was placed and what it holds. At most one
    instance of a workspace is open (``ended_at`` NULL): the current one.
    """

    __tablename__ = "workspace_instances"
    __table_args__ = (
        Index("ix_instances_workspace", "workspace_id", "id"),
        Index("ux_instances_open", "workspace_id", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handle: Mapped[str | None] = mapped_column(String(200))
    runtime_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    node: Mapped[str] = mapped_column(String(200), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"app": "http://172.18.0.5:8888"}; room for "ssh" and shared ports by name.
    endpoints: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    devices: Mapped[list[str]] = mapped_column(JSON, default=list)


class WorkspaceEvent(Base):
    """One timestamped step of a workspace's life: state changes and progress messages."""

    __tablename__ = "workspace_events"
    __table_args__ = (Index("ix_events_workspace", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(String(4000), default="")

    workspace: Mapped[Workspace] = relationship(back_populates="events")


class LoginFailure(Base):
    """One failed login, kept while the login throttle's rules may count it
    (identity/throttle.py): at most their ``memory``, then deleted."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account", "account", "at"),
        Index("ix_login_failures_address", "address", "at"),
        Index("ix_login_failures_at", "at"),  # for deleting the old ones
    )

    # 64-bit on PostgreSQL: an attack may go on for long; SQLite's INTEGER is 64-bit anyway.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    account: Mapped[str] = mapped_column(String(100))  # as typed (normalised): may not exist
    address: Mapped[str] = mapped_column(String(100))  # its address_key: IPv6 by /64
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The password was right later from there: counts only for the account (rule 2).
    forgiven: Mapped[bool] = mapped_column(default=False)


class Workshop(Base):
    """A class or workshop: pre-made accounts (its seats) that expire together."""

    __tablename__ = "workshops"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    created_by: Mapped[str] = mapped_column(String(30))
    # Who manages it besides admins: its creator, and the instructors an admin adds.
    instructors: Mapped[list[str]] = mapped_column(JSON, default=list)
    template: Mapped[str | None] = mapped_column(String(30))  # the attendees' workspace
    app: Mapped[str | None] = mapped_column(String(30))  # or their instant app (labspace.apps)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the expiry disabled the accounts (an extension clears it and enables them).
    expired: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    seats: Mapped[list[WorkshopSeat]] = relationship(back_populates="workshop")


class WorkshopSeat(Base):
    """One attendee account of a workshop. ``sealed`` is its password and login link,
    encrypted with the hub's key, so an instructor can print the sheet again; the link is
    found by its SHA-256 (``link_digest``)."""

    __tablename__ = "workshop_seats"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    workshop_id: Mapped[int] = mapped_column(
        ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    seat: Mapped[int] = mapped_column(Integer)  # 1..N, the number on the card
    sealed: Mapped[str] = mapped_column(String(1000))
    link_digest: Mapped[str] = mapped_column(String(64), unique=True)

    workshop: Mapped[Workshop] = relationship(back_populates="seats")
    user: Mapped[User] = relationship()


class AuditEvent(Base):
    """One entry of the audit log (labspace.audit): who did what, to what, when, from where."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_actor", "actor", "id"),
        Index("ix_audit_action", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))  # a user name, or "" for nobody known
    action: Mapped[str] = mapped_column(String(40))  # e.g. "login.failed", "user.delete"
    target: Mapped[str] = mapped_column(String(200), default="")  # e.g. "alice/lab"
    address: Mapped[str] = mapped_column(String(100), default="")  # the client's address
    ok: Mapped[bool] = mapped_column(default=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class App(Base):
    """An instant app (labspace.apps): its definition and its pool's running totals."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # apps.model.AppDefinition
    created_by: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Draining: no claims handed out, no spares kept (`labspace app drain`).
    draining: Mapped[bool] = mapped_column(default=False)
    # Raised by `refresh`: spares of an older generation are replaced, claims are left alone.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    claims_total: Mapped[int] = mapped_column(BigInteger, default=0)
    culled_total: Mapped[int] = mapped_column(BigInteger, default=0)


class AppContainer(Base):
    """One container of an app's pool: starting, ready (a spare) or claimed. ``slot`` names
    it in its URL (/apps/<app>/<slot>/); the claim's browser proves itself with a cookie whose
    SHA-256 is ``claim_digest``. Gone containers leave no row."""

    __tablename__ = "app_containers"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    slot: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(20))  # starting, ready, claimed
    generation: Mapped[int] = mapped_column(Integer)
    container_id: Mapped[str] = mapped_column(String(100), default="")
    target: Mapped[str | None] = mapped_column(String(200))  # "http://172.18.0.5:8888"
    secret: Mapped[str] = mapped_column(String(100))
    # The template's app section as started (secret header, base-URL rule), for the proxy.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_digest: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(100), default="")


class Quota(Base):
    """The most a user, or a group's members together, may hold at once: CPUs, memory, GPUs,
    running workspaces (None: no limit). ``scope`` is "user" or "group"; ``name`` the user's
    or group's name."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("scope", "name", name="uq_quotas_scope_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(64))
    cpus: Mapped[float | None] = mapped_column(Float)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    gpus: Mapped[int | None] = mapped_column(Integer)
    running: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
