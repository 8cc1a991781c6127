"""API input and output shapes, separate from the tables (a hash can never leak out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from labspace.gpus import Grant
from labspace.names import Name, UserName
from labspace.policy import ProfileSpec
from labspace.sharing.service import PortInfo, PortList
from labspace.ssh.store import KeyInfo
from labspace.state.models import User
from labspace.templates.idle import IdlePolicy, duration_text
from labspace.workspaces.culler import IdleView
from labspace.workspaces.store import WorkspaceRecord


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Input):
    name: UserName
    password: str | None = Field(None, min_length=8, max_length=200)
    admin: bool = False


class UserPublic(BaseModel):
    name: str
    uid: int
    gid: int = Field(description="The primary gid (the directory's gidNumber, else the uid).")
    admin: bool
    disabled: bool
    role: str = Field("member", description="member or instructor (admins: admin).")
    source: str = Field(description="local, ldap (the directory), oidc (single sign-on) or "
                        "workshop.")
    groups: list[str] = Field(description="Groups from the directory or the provider, as of "
                              "the last login.")
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(name=user.name, uid=user.uid, gid=user.primary_gid, admin=user.is_admin,
                   disabled=user.disabled, role=user.role, source=user.source,
                   groups=[str(group.get("name")) for group in user.groups or []],
                   created_at=user.created_at)


class GroupEntry(_Input):
    name: Name
    gid: int | None = Field(None, ge=100, lt=2**31, description="Its gid: members get it "
                            "inside their workspaces, and its folder (group_folders_dir).")


class UserUpdate(_Input):
    role: Literal["member", "instructor"] | None = None
    groups: list[GroupEntry] | None = Field(None, max_length=100, description="A local or "
                                            "workshop account's groups (the directory's "
                                            "accounts get theirs at each login).")


class UserDeleted(BaseModel):
    name: str
    uid: int = Field(description="Retired: never given to anyone again.")
    home_kept_at: str | None = Field(description="Where the home was moved on the server; "
                                     "null: deleted.")


class UserBulk(_Input):
    action: Literal["disable", "enable", "reset", "delete"]
    names: list[Annotated[str, Field(min_length=1, max_length=30)]] = Field(
        min_length=1, max_length=500)
    delete_home: bool = Field(False, description="delete: the homes too (else each is moved "
                              "to <homes>/.deleted).")
    confirm: str = Field("", max_length=100, description="With delete_home: the text "
                         "\"delete N homes\", N the number of names.")


class BulkOutcome(BaseModel):
    name: str
    ok: bool
    error: str | None = None
    password: str | None = Field(None, description="reset: the new one-time password.")


class DirectorySync(BaseModel):
    checked: int = Field(description="Enabled directory accounts checked.")
    gone: list[str] = Field(description="Those the directory no longer has or lets in: "
                            "disabled, unless held_back.")
    held_back: bool = Field(description="Too many gone at once (a broken search?): nobody "
                            "was disabled.")


class UserCreated(UserPublic):
    password: str | None = Field(None, description="The generated one-time password, if any.")


class PasswordReset(_Input):
    password: str | None = Field(
        None, min_length=8, max_length=200, description="Omit to generate a one-time password."
    )


class PasswordSet(BaseModel):
    name: str
    password: str | None = Field(None, description="The generated one-time password, if any.")


class TokenCreate(_Input):
    note: str = Field("", max_length=100)


class TokenCreated(BaseModel):
    token: str
    note: str


class TokenPublic(BaseModel):
    """A token as listed: never its value (only a digest is stored anyway)."""

    id: int
    kind: str
    note: str
    created_at: datetime
    expires_at: datetime | None
    current: bool = Field(description="Whether this request was made with it.")


class WorkspaceCreate(_Input):
    name: Name
    template: Name
    profile: str | None = Field(None, max_length=30, description="Resource profile (GET "
                                "/hub/api/profiles); default: the first one you may use.")
    owner: str | None = Field(None, description="Admins only: create for another user.")
    start: bool = True


class ProfilePublic(BaseModel):
    name: str
    display_name: str
    description: str
    cpus: float | None
    memory: str | None

    @classmethod
    def of(cls, name: str, spec: ProfileSpec) -> ProfilePublic:
        return cls(name=name, display_name=spec.display_name or name,
                   description=spec.description, cpus=spec.limits.cpus,
                   memory=spec.limits.memory)


class IdlePolicyPublic(BaseModel):
    """When a workspace stops for want of use: its template's idle settings, or its
    profile's."""

    stop_after: str = Field(description="How long without use, e.g. \"8h\".")
    stop_after_seconds: int
    cpu_below: float | None = Field(
        None, description="Percent of one core: busier than this, it is not idle.")
    description: str = Field(description="The policy in words.")

    @classmethod
    def of(cls, policy: IdlePolicy) -> IdlePolicyPublic:
        return cls(stop_after=duration_text(policy.stop_after),
                   stop_after_seconds=policy.stop_after, cpu_below=policy.cpu_below,
                   description=policy.describe())


class WorkspacePublic(BaseModel):
    owner: str
    name: str
    template: str
    profile: str = Field("", description="Its resource profile (\"\": the template's limits).")
    state: str
    message: str
    url: str
    created_at: datetime
    updated_at: datetime
    node: str = ""  # the server it runs on ("" on a single engine, or when not running)
    gpus: list[str] = Field(
        default_factory=list, description="UUIDs of the GPUs it holds while it starts or "
        "runs (empty: none).")
    gpu_shared: bool = Field(
        False, description="Whether it shares its GPU with other workspaces (time-sliced) "
        "rather than holding it whole.")
    idle_policy: IdlePolicyPublic | None = Field(
        None, description="When it stops for want of use; null: never.")
    idle_stop_at: datetime | None = Field(
        None, description="When it stops if nobody uses it before; null when it is not "
        "running, has no idle policy, has a tunnel (an SSH session) open, or the proxy's "
        "record of use is unavailable.")

    @classmethod
    def of(cls, record: WorkspaceRecord, idle: IdleView | None = None,
           gpus: Grant | None = None) -> WorkspacePublic:
        stop_at = idle.stop_at if idle is not None else None
        return cls(owner=record.owner, name=record.name, template=record.template,
                   profile=record.profile, state=record.state, message=record.message,
                   url=f"/user/{record.owner}/{record.name}/",
                   created_at=record.created_at, updated_at=record.updated_at,
                   node=record.node,
                   gpus=list(gpus.uuids) if gpus else [], gpu_shared=bool(gpus and gpus.shared),
                   idle_policy=IdlePolicyPublic.of(idle.policy) if idle is not None else None,
                   idle_stop_at=datetime.fromtimestamp(stop_at, UTC) if stop_at else None)


class WorkspaceUsage(BaseModel):
    owner: str
    name: str
    state: str
    cpu_percent: float | None
    memory_bytes: int | None
    memory_limit_bytes: int | None


class ErrorBody(BaseModel):
    error: str
    detail: str | None = None


class KeyCreate(_Input):
    public_key: str = Field(max_length=16384, description="One line of an id_*.pub file.")
    name: str = Field("", max_length=100, description="Default: the key's comment.")


class KeyPublic(BaseModel):
    id: int
    owner: str
    name: str
    type: str
    fingerprint: str
    public_key: str
    created_at: str

    @classmethod
    def of(cls, key: KeyInfo) -> KeyPublic:
        return cls(id=key.id, owner=key.owner, name=key.name, type=key.kind,
                   fingerprint=key.fingerprint, public_key=key.public_key,
                   created_at=key.created_at.isoformat())


class SshFacts(BaseModel):
    """What an SSH client needs to reach a workspace by name without a prompt."""

    user: str = Field(description="The account to log in as (the workspace's owner).")
    host_key: str = Field(description="The workspace's host key, for known_hosts.")
    tunnel_path: str = Field(description="The tunnel to its SSH server, on the public URL.")
    port: int


ShareLevelName = Literal["private", "authenticated", "public"]


class PortPublic(BaseModel):
    port: int
    level: ShareLevelName = Field(description="private: the owner only; authenticated: "
                                  "anyone logged in; public: anyone with the link.")
    listening: bool = Field(description="Something listens on it now (detected).")
    loopback_only: bool = Field(description="Bound to 127.0.0.1 only: unreachable by link.")
    url: str | None = Field(description="The port's own address (its host under apps_domain).")
    note: str = Field(description="Why it cannot be shared, or what to do; '' when fine.")

    @classmethod
    def of(cls, info: PortInfo) -> PortPublic:
        return cls(port=info.port, level=info.level.value, listening=info.listening,
                   loopback_only=info.loopback_only, url=info.url, note=info.note)


class PortsPublic(BaseModel):
    ports: list[PortPublic]
    max_level: ShareLevelName = Field(description="The widest level the template allows.")
    detected: bool = Field(description="Whether the listening ports could be read now.")
    detail: str = Field(description="Why they could not ('' when they were).")

    @classmethod
    def of(cls, found: PortList) -> PortsPublic:
        return cls(ports=[PortPublic.of(info) for info in found.ports],
                   max_level=found.max_level.value, detected=found.detected,
                   detail=found.detail)


class ShareUpdate(_Input):
    level: ShareLevelName
