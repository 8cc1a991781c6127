"""An instant app: a template, where to open it, its pool's settings and who may claim it.

One validated shape for input (API, CLI), storage (as JSON in ``apps.spec``) and output.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from labspace.names import NAME_PATTERN

# A path inside the app, as a link may carry it: no scheme, host, "..", backslash or control
# characters (it is appended to the claim's own base URL and must stay there).
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
ANYONE = "anyone"
USERS = "users"


class PoolSettings(BaseModel):
    """How many spares to keep and how long claims live (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spares: int = Field(2, ge=0, le=500, description="Containers kept ready to hand out.")
    max_claimed: int = Field(100, ge=1, le=5000,
                             description="The most claimed at once; past it: 'at capacity'.")
    idle_timeout: int = Field(
        1200, ge=10, le=7 * 86400,
        description="Seconds without a request or WebSocket frame before a claim ends.")
    max_age: int = Field(4 * 3600, ge=60, le=30 * 86400,
                         description="Seconds after which a claim ends, active or not.")
    max_ready_age: int = Field(
        3600, ge=60, le=30 * 86400,
        description="Seconds a spare may wait; older ones are replaced with fresh ones.")
    claims_per_browser: int = Field(
        1, ge=1, le=20, description="Claims one browser may hold at once; opening the link "
        "again returns to the claim it has.")


class AppDefinition(BaseModel):
    """What an admin or instructor defines: ``/apps/<name>`` hands out a fresh container of
    ``template``, opened at ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Short name, the link's /apps/<name>.")
    display_name: str = Field("", max_length=80, description="Shown on the waiting page.")
    template: str = Field(pattern=NAME_PATTERN,
                          description="The template whose image, command and port it runs.")
    path: str = Field("", max_length=500, description="Where to open it, under the claim's "
                      "base URL, e.g. lab/tree/welcome.ipynb.")
    ready_path: str | None = Field(
        None, max_length=500, description="What must answer 200 before a spare counts "
        "(under the base URL); default: the template's health path.")
    access: Literal["anyone", "users"] = Field(
        "anyone", description="anyone: no account needed; users: logged-in users only.")
    shareable: bool = Field(
        False, description="A claim's link works in other browsers too (demos); otherwise "
        "only in the browser that claimed it.")
    pool: PoolSettings = PoolSettings()

    @field_validator("name", "template")
    @classmethod
    def _no_double_dash(cls, value: str) -> str:
        if "--" in value:
            raise ValueError("names never contain two dashes in a row")
        return value

    @field_validator("path", "ready_path")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lstrip("/")
        if (not _PATH.fullmatch(value) or value.startswith("/") or "//" in value
                or ".." in value.split("?", 1)[0].split("/")):
            raise ValueError("a path under the app: letters, digits and URL punctuation, "
                             "no '..', '//' or backslash")
        return value

    @property
    def title(self) -> str:
        return self.display_name or self.name
