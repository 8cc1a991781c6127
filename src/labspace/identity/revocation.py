"""Telling the proxy at once when credentials stop being valid (logout, revoked token,
disabled account), so it closes their open connections instead of waiting for its cache.

The proxy listens on a Unix socket in the data directory (labspace.proxy.control). When it
does not answer (stopped, restarting) there is nothing to close: a proxy that starts again has
no connections and an empty cache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

TIMEOUT = 2.0


class ProxyNotifier:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def revoked(self, *, digests: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        body = {"digests": list(digests), "users": list(users)}
        if not (body["digests"] or body["users"]):
            return
        if not self.socket_path.exists():
            log.debug("no proxy control socket at %s; nothing to close", self.socket_path)
            return
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path))
        try:
            async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
                response = await client.post("http://proxy/revoke", json=body)
                response.raise_for_status()
        except httpx.HTTPError as error:
            log.warning("could not tell the proxy about revoked credentials (%s); its cache "
                        "forgets them within seconds", error)
