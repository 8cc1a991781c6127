"""The template model: one validated shape, used for input, storage (as JSON) and output."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labspace.names import NAME_PATTERN
from labspace.proxy.fields import valid_field_value, valid_secret_name
from labspace.templates.idle import IdleCpuBelow, IdlePolicy, IdleStopAfter

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

# Placeholders a template may use in its command and environment values.
PLACEHOLDERS = ("user", "uid", "gid", "home", "workspace", "base_url", "port", "secret")


def parse_size(value: str | int) -> int:
    """'512m', '2g', '1.5GiB' or a byte count -> bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(value.strip())
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 512m, 2g)")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.lower()])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSpec(_Strict):
    """The workspace's main app, which the proxy serves at /user/<user>/<workspace>/."""

    command: list[str] = Field(
        description="Command run as the user; may use {user} {uid} {gid} {home} {workspace} "
        "{base_url} {port} {secret}."
    )
    port: int = Field(8888, ge=1, le=65535, description="Port the app listens on.")
    base_url: Literal["prefix", "strip"] = Field(
        "prefix",
        description="prefix: the app serves under /user/<user>/<workspace>/ (Jupyter's "
        "base_url); strip: the proxy removes that prefix before forwarding.",
    )
    health_path: str = Field(
        "/api/status", description="Path (under the base URL) that answers 200 when ready."
    )
    secret_header: str = Field(
        "Authorization", description="Header through which the proxy proves itself to the app."
    )
    secret_value: str = Field("token {secret}", description="Value of that header.")

    # The proxy refuses to forward with an invalid secret header anyway (proxy/headers.py);
    # refusing it here tells the administrator when the template is saved.
    @field_validator("secret_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not valid_secret_name(value):
            raise ValueError("secret_header must be an HTTP header name (RFC 9110 token), and "
                             "not one that frames the message or that the proxy sets itself")
        return value

    @field_validator("secret_value")
    @classmethod
    def _header_value(cls, value: str) -> str:
        if not valid_field_value(value):
            raise ValueError("secret_value must not contain control characters (CR, LF...)")
        return value


class LimitSpec(_Strict):
    cpus: float | None = Field(None, gt=0, description="CPU cores (may be fractional).")
    memory: str | None = Field(None, description="Memory, e.g. 2g or 512m.")
    pids: int | None = Field(None, gt=0, description="Maximum number of processes.")
    gpus: int | None = Field(
        None, ge=0, le=64,
        description="Whole GPUs, each never given to two workspaces at once (0: none).")
    shared_gpu: bool | None = Field(
        None, description="A time-sliced share of one GPU that several workspaces use at "
        "once, instead of whole GPUs.")

    @model_validator(mode="after")
    def _one_kind_of_gpu(self) -> LimitSpec:
        if self.gpus and self.shared_gpu:
            raise ValueError("ask for whole GPUs (gpus) or a shared GPU (shared_gpu), not both")
        return self

    @field_validator("memory")
    @classmethod
    def _memory_parses(cls, value: str | None) -> str | None:
        if value is not None and parse_size(value) < 16 * 1024**2:
            raise ValueError("memory below 16m cannot run a workspace")
        return value

    @property
    def memory_bytes(self) -> int | None:
        return parse_size(self.memory) if self.memory else None


class MountSpec(_Strict):
    """An extra host directory (a shared lab folder, a data set) mounted in every workspace."""

    source: str = Field(description="Absolute host path.")
    target: str = Field(description="Absolute path inside the workspace.")
    read_only: bool = True

    @field_validator("source", "target")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or ".." in value.split("/"):
            raise ValueError("mount paths must be absolute, without '..'")
        return value


# A node label key or value as placement constraints accept it (no '=', spaces or quotes).
NODE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class TemplateSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Short name used in APIs and the CLI.")
    display_name: str = Field(description="Name shown to people.", max_length=80)
    description: str = Field("", max_length=500)
    image: str = Field(min_length=1, description="Container image, e.g. labspace/jupyterlab.")
    app: AppSpec
    limits: LimitSpec = LimitSpec()
    env: dict[str, str] = Field(default_factory=dict)
    mounts: list[MountSpec] = Field(default_factory=list)
    sudo: bool = Field(False, description="Whether the user may use sudo inside.")
    workspaces: bool = Field(
        True, description="Offered for personal workspaces; false: for instant apps only "
        "(not in the start form, and no workspace may be created from it).")
    port_sharing: Literal["private", "authenticated", "public"] = Field(
        "authenticated",
        description="The widest level users may share a port of these workspaces at: private "
        "(owner only: no sharing), authenticated (anyone logged in) or public (anyone with "
        "the link). Lowering it lowers the shares already made.")
    node_labels: dict[str, str] = Field(
        default_factory=dict, max_length=16,
        description="Node labels a swarm node must carry to run it, e.g. {gpu = \"true\"} "
        "(runtime = \"swarm\"; a single host ignores them).")
    idle_stop_after: IdleStopAfter = None
    idle_cpu_below: IdleCpuBelow = None

    @property
    def idle_policy(self) -> IdlePolicy | None:
        """When its running workspaces stop for want of use (templates/idle.py)."""
        return IdlePolicy.of(self.idle_stop_after, self.idle_cpu_below)

    @field_validator("node_labels")
    @classmethod
    def _label_words(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not NODE_LABEL.fullmatch(key) or not NODE_LABEL.fullmatch(text):
                raise ValueError(f"node label {key}={text}: use letters, digits, '.', '_', "
                                 "'-' (at most 63 each)")
        return value
