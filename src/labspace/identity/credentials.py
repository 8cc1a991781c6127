"""What a credential looks like on the wire and in storage. Stdlib only: the proxy imports it."""

from __future__ import annotations

import hashlib

SESSION_COOKIE = "labspace-session"
# The name over HTTPS: browsers take a __Host- cookie only from its own host, Secure, Path=/.
SECURE_SESSION_COOKIE = "__Host-labspace-session"
TOKEN_PREFIX = "lsp_"
# The kind of the tokens `labspace login` hands to a laptop: never admin powers, in the hub
# (web/deps.py) or the proxy (proxy/dbsource.py), so a lost laptop is no administrator's key.
SCOPED_TOKEN_KIND = "cli"
MAX_TOKEN_LENGTH = 100


def digest(token: str) -> str:
    """Tokens are 256-bit random values, so a fast hash is enough to store and look them up
    (a slow one like argon2 protects low-entropy passwords, not random keys)."""
    return hashlib.sha256(token.encode()).hexdigest()


def plausible_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and len(value) <= MAX_TOKEN_LENGTH
