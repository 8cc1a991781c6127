"""The proxy's one seam: where routes and credentials come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Route:
    """Where /user/<owner>/<workspace>/ goes, and how to prove to the app that we are the proxy."""

    owner: str
    workspace: str
    state: str  # the workspace's lifecycle state; only "running" is forwarded
    target: str | None  # "http://10.0.0.5:8888", None unless running
    secret_header: str = "Authorization"
    secret_value: str = ""
    strip_prefix: bool = False  # True: forward without the /user/<u>/<w> prefix


@dataclass(frozen=True)
class ClaimRoute:
    """Where /apps/<app>/<slot>/ goes (an instant app's claimed container), and who may."""

    app: str
    slot: str
    target: str | None  # None unless claimed and started
    claim_digest: str  # SHA-256 of the claim cookie its browser holds
    shareable: bool  # the app lets anyone with the link in (demos)
    secret_header: str = "Authorization"
    secret_value: str = ""
    strip_prefix: bool = False


@dataclass(frozen=True)
class Principal:
    """Who a cookie or token belongs to."""

    user: str
    is_admin: bool


class RouteSource(Protocol):
    async def route(self, owner: str, workspace: str) -> Route | None:
        """The route for a workspace, or None when no such workspace exists."""
        ...

    async def principal(self, token_digest: str) -> Principal | None:
        """The active user whose session or API token has this SHA-256 digest, or None.
        (The proxy passes digests, never tokens: a workspace host's cookie carries only the
        digest of the hub session it came from.)"""
        ...

    async def claim_route(self, app: str, slot: str) -> ClaimRoute | None:
        """The claimed container of an app at this slot, or None (no such claim, or a spare
        not yet claimed: nobody gets one without claiming it)."""
        ...

    async def share_level(self, owner: str, workspace: str, port: int) -> str:
        """The level a port of the workspace is shared at: "private" when it was never
        shared, when there is no such workspace or when its owner is disabled."""
        ...
