"""Who the client is, as the proxy tells its upstreams: X-Forwarded-For, -Proto and -Host.

What a client says about itself (X-Forwarded-*, Forwarded, X-Real-IP, and the proxy's proof
header for the hub) is dropped, never passed on: the hub counts failed logins per address, and
a client that could name its own address would get unlimited attempts. The proxy reports what
it saw. It believes X-Forwarded-For/-Proto only from ``trusted_proxies``, the reverse proxies
an administrator put in front of labspace (nginx terminating TLS), and then only the last
address, the one that proxy added itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from labspace.config import Settings
from labspace.hubedge import PROXY_HEADER

# Request headers that make claims about the client: replaced, never forwarded as sent.
CLIENT_CLAIMS = frozenset({
    "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip",
    PROXY_HEADER.lower(),
})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Forwarding:
    """Whom the proxy believes about the client, and the scheme it reports by default."""

    trusted: tuple[Network, ...] = ()
    # labspace serves plain HTTP only, so an https public_url means a TLS terminator in front:
    # "https" is then the public scheme, whatever the connection from that terminator says.
    scheme: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Forwarding:
        public = urlsplit(settings.public_url or "").scheme
        return cls(
            trusted=tuple(ipaddress.ip_network(net, strict=False)
                          for net in settings.trusted_proxies),
            scheme="https" if public == "https" else None,
        )

    def client(self, request: web.BaseRequest) -> tuple[str, str]:
        """(address, scheme) of the client, for X-Forwarded-For and X-Forwarded-Proto."""
        remote = request.remote or ""
        scheme = self.scheme or request.scheme
        if self.trusted and self._trusts(remote):
            claimed = _last_address(request.headers.getall("X-Forwarded-For", ()))
            if claimed is not None:
                remote = claimed
            proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
            if proto in ("http", "https"):
                scheme = proto
        return remote, scheme

    def _trusts(self, remote: str) -> bool:
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)


DIRECT = Forwarding()  # nobody in front: the connection is the client


def _last_address(values: list[str] | tuple[str, ...]) -> str | None:
    """The right-most entry (what the trusted proxy appended), if it is an address."""
    if not values:
        return None
    last = values[-1].rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None
