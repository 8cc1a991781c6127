"""HTTP field syntax (RFC 9110 5.1, 5.5): which header names and values may be sent at all.

Stdlib only, so that template validation (labspace.templates) checks a template's secret
header by the same rules the proxy applies before it forwards (headers.py).
"""

from __future__ import annotations

import re

from labspace.hubedge import PROXY_HEADER

# field-name = token
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Controls other than HTAB: a CR or LF would end the field and start one of the sender's.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Names a secret header may not take: they frame or route the message, are hop-by-hop, or the
# proxy sets them itself (who the client is; its proof to the hub).
_NOT_FOR_SECRETS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    "expect", "cookie", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "forwarded", "x-real-ip", PROXY_HEADER.lower(),
})


def valid_field_name(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


def valid_field_value(value: str) -> bool:
    return _CONTROL.search(value) is None


def valid_secret_name(name: str) -> bool:
    """A header name a workspace's secret may be sent as."""
    return valid_field_name(name) and name.lower() not in _NOT_FOR_SECRETS
