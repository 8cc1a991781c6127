"""Telling the proxy at once when credentials stop being valid (logout, revoked token,
disabled account) or a shared port's level changed, so it closes the open connections that
are no longer allowed instead of waiting for its cache.

The proxy listens on a Unix socket in the data directory (labspace.proxy.control). When it
does not answer (stopped, restarting) there is nothing to close: a proxy that starts again has
no connections and an empty cache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from labspace.hubedge import CONTROL_SOCKET_TLS

log = logging.getLogger(__name__)

TIMEOUT = 2.0
SharePort = tuple[str, str, int, str]  # (owner, workspace, port, level)


class ProxyNotifier:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def revoked(self, *, digests: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        body = {"digests": list(digests), "users": list(users)}
        if body["digests"] or body["users"]:
            await self._post("/revoke", body, "revoked credentials")

    async def shares_changed(self, changes: Iterable[SharePort]) -> None:
        """Ports whose share level changed: (owner, workspace, port, new level)."""
        shares = [{"owner": owner, "workspace": workspace, "port": port, "level": level}
                  for owner, workspace, port, level in changes]
        if shares:
            await self._post("/shares", {"shares": shares}, "changed port shares")

    async def _post(self, path: str, body: dict[str, Any], what: str) -> None:
        if not self.socket_path.exists():
            log.debug("no proxy control socket at %s; nothing to close", self.socket_path)
            return
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path),
                                              verify=CONTROL_SOCKET_TLS)
        try:
            async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
                response = await client.post("http://proxy" + path, json=body)
                response.raise_for_status()
        except httpx.HTTPError as error:
            log.warning("could not tell the proxy about %s (%s); its cache forgets them "
                        "within seconds", what, error)
