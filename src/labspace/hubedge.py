"""What the public proxy and the hub agree on at their edge. Stdlib only: both processes
import it, and the proxy must stay lean.

- The proxy proves that it forwarded a request by adding ``PROXY_HEADER`` with
  ``proxy_proof(signing key)``; only then does the hub believe the X-Forwarded-For/-Proto the
  proxy set. The proof goes to the hub only, never to a workspace, and a client's copy is
  dropped, so it never leaves the machine.
- ``MAX_HUB_BODY`` is the largest request body any hub route accepts: the proxy refuses bigger
  ones before it connects to the hub.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time
from collections.abc import Callable

PROXY_HEADER = "X-Labspace-Proxy"
KiB = 1024
MiB = 1024 * KiB
MAX_HUB_BODY = 2 * MiB  # template JSON, the hub's biggest body; forms are far smaller
# The hub speaks plain HTTP to the proxy's control socket (a Unix socket): no TLS. Given no
# SSL context, httpx builds one per client and loads the system's CA certificates into it,
# ~40 ms of the event loop's CPU each time (the pools asked the proxy for its activity after
# every claim); this one is never used and costs nothing to pass.
CONTROL_SOCKET_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def proxy_proof(signing_key: Callable[[], str]) -> str:
    """A value derived from the signing key (never the key itself, which also signs CSRF
    tokens): both processes compute it, nobody else can.

    ``signing_key`` is ``Settings.signing_key``: when the two processes start together, one
    may find the key file that the other is creating still missing its key; wait for it.
    """
    for _ in range(200):
        try:
            key = signing_key()
        except FileExistsError:  # created by the other process since we looked
            key = ""
        if key:
            return hmac.new(key.encode(), b"labspace proxy -> hub", hashlib.sha256).hexdigest()
        time.sleep(0.01)
    raise RuntimeError("the signing key file stays empty")
