"""Which origin serves what: the hub's, and, with ``apps_domain``, one host per workspace.

A browser lets a page use everything its origin owns: cookies sent with its requests, storage,
service workers. Workspace content is whatever its owner put there (an extension, an HTML
file), so it must never run on the hub's origin, where it could act as whoever is looking at
it. With ``apps_domain`` set, each workspace gets its own host and so its own origin::

    https://<workspace>--<owner>.<apps_domain>/user/<owner>/<workspace>/...

The path keeps the ``/user/<owner>/<workspace>/`` prefix the app was started with, so turning
``apps_domain`` on or off needs no workspace restart (JupyterHub's subdomain mode does the
same). The label is injective: names never contain ``--`` nor start or end with a dash, so
``<workspace>--<owner>`` splits back into exactly one pair, and it is at most 30 + 2 + 30 = 62
characters (DNS allows 63). A port its owner shared (labspace.sharing) has a host of its own,
so a shared app never shares an origin with the workspace or another port::

    https://<port>-<workspace>--<owner>.<apps_domain>/...

A label starting with a digit is a shared port's (names start with a letter); the port is
written without leading zeros, so each port has exactly one host. Such a label can pass 63
characters when both names are long: that workspace's ports cannot be shared by link (the
API says so), only forwarded. An instant app's claim (labspace.apps) has a host of its own
too, named by its slot ("c" and 16 hex digits: no ``--``, not a digit first), with the path
its container was started under::

    https://<slot>.<apps_domain>/apps/<app>/<slot>/...

Stdlib only: the proxy imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

SEPARATOR = "--"
MAX_LABEL = 63  # DNS: the longest label, and what wildcard certificates and resolvers accept
# Served by the proxy on every workspace host: turns the hub's ticket into a host cookie.
AUTH_PATH = "/_labspace/auth"
# Served by the proxy on every claim host: turns the hub's claim ticket into a host cookie.
CLAIM_PATH = "/_labspace/claim"


def is_claim_slot(text: str) -> bool:
    """An instant-app claim's slot: "c" and 16 lowercase hex digits (labspace.apps.spec)."""
    return len(text) == 17 and text[0] == "c" and all(ch in "0123456789abcdef"
                                                      for ch in text[1:])


def split_host(host: str) -> str:
    """The host name of a Host header value, lower-cased, without its port."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal: [::1]:8000
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class Origins:
    """The hub's origin and the workspace hosts, from ``public_url`` and ``apps_domain``."""

    public_url: str
    apps_domain: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.public_url).scheme or "http"

    @property
    def hub_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def _port_suffix(self) -> str:
        port = urlsplit(self.public_url).port
        return f":{port}" if port else ""

    def workspace_host(self, owner: str, workspace: str) -> str:
        if not self.apps_domain:
            raise ValueError("workspace hosts need apps_domain")
        return f"{workspace}{SEPARATOR}{owner}.{self.apps_domain}"

    def workspace_origin(self, owner: str, workspace: str) -> str:
        return f"{self.scheme}://{self.workspace_host(owner, workspace)}{self._port_suffix}"

    def share_host(self, owner: str, workspace: str, port: int) -> str:
        """The host of a shared port; ValueError when there is no apps_domain or the label
        would be longer than DNS allows."""
        if not self.apps_domain:
            raise ValueError("shared ports need apps_domain")
        label = f"{port}-{workspace}{SEPARATOR}{owner}"
        if len(label) > MAX_LABEL:
            raise ValueError(f"the host name {label!r} would be longer than the {MAX_LABEL} "
                             "characters DNS allows in one label")
        return f"{label}.{self.apps_domain}"

    def share_origin(self, owner: str, workspace: str, port: int) -> str:
        return f"{self.scheme}://{self.share_host(owner, workspace, port)}{self._port_suffix}"

    def claim_host(self, slot: str) -> str:
        if not self.apps_domain:
            raise ValueError("claim hosts need apps_domain")
        if not is_claim_slot(slot):
            raise ValueError(f"{slot!r} is not a claim's slot")
        return f"{slot}.{self.apps_domain}"

    def claim_origin(self, slot: str) -> str:
        return f"{self.scheme}://{self.claim_host(slot)}{self._port_suffix}"

    def claim_of(self, host: str) -> str | None:
        """The slot whose claim host this is, or None for any other host."""
        label = self._label(host)
        return label if is_claim_slot(label) else None

    def is_app_host(self, host: str) -> bool:
        """True for any name under apps_domain (a Host header value, port allowed)."""
        return bool(self.apps_domain) and split_host(host).endswith("." + str(self.apps_domain))

    def workspace_of(self, host: str) -> tuple[str, str] | None:
        """(owner, workspace) whose host this is, or None for any other host."""
        label = self._label(host)
        if not label or label[0].isdigit():
            return None
        return _owner_and_workspace(label)

    def share_of(self, host: str) -> tuple[str, str, int] | None:
        """(owner, workspace, port) whose shared port's host this is, or None."""
        if not host.lstrip()[:1].isdigit():  # every workspace host ends here, at one check
            return None
        label = self._label(host)
        port_text, dash, rest = label.partition("-")
        if not (dash and port_text.isdigit() and port_text[0] != "0" and len(port_text) <= 5
                and rest[:1].isalpha()):
            return None
        port = int(port_text)
        found = _owner_and_workspace(rest)
        if found is None or not 1 <= port <= 65535:
            return None
        return found[0], found[1], port

    def _label(self, host: str) -> str:
        """The first label of a host right under apps_domain ('' for any other host)."""
        if not self.is_app_host(host):
            return ""
        label = split_host(host)[: -len(str(self.apps_domain)) - 1]
        return "" if "." in label else label

    def own_origin(self, host: str) -> str:
        """The origin a request to ``host`` (a Host header value) was made to."""
        return f"{self.scheme}://{host.strip().lower()}"


def _owner_and_workspace(label: str) -> tuple[str, str] | None:
    """'<workspace>--<owner>' -> (owner, workspace), or None for any other shape."""
    parts = label.split(SEPARATOR)
    if len(parts) != 2 or not all(parts):
        return None
    workspace, owner = parts
    if workspace.endswith("-") or owner.startswith("-"):
        return None  # "a---b": the separator is ambiguous; no valid name pair makes it
    return owner, workspace
