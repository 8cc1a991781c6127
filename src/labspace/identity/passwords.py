"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's recommendation)."""

from __future__ import annotations

import os
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# argon2id is built to use the CPU: a burst of logins (a workshop's start) would take every
# core, and the hub's event loop with them. At most cores - 1 hashes at once: the rest wait
# their turn in their worker thread, and one core always answers everybody else.
_hashing = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        with _hashing:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A one-time password people can type: 4 groups of 4 letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
