"""Password hashing: argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).

One profile for every account, so the time of an answer says nothing about which kind of
account a name is (or whether it exists). On this 2-core machine a hash takes about 30 ms
(RFC 9106's 64 MiB / 3 passes / 4 lanes took 150 ms and two cores), so a class of 400 logs in
within a minute; the password policy (passwordpolicy.py) keeps guessable passwords out.
Hashes made with other parameters still verify and are replaced at the next login
(``needs_rehash``).

Hashes run on a pool of cores - 1 threads, first come first served: a burst of logins (a
workshop's start) queues there, in order, and one core always answers everybody else.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# argon2 frees the GIL, so these threads run in parallel with the event loop.
_pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                           thread_name_prefix="password-hash")

# Verified when the name is unknown or has no password: the same work as a real check.
DUMMY_HASH = ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
              "TOMZ+RSuaEIm7nffGB70Y3BElQo62ZN6OKhNGZBIZ2Y")

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Made with other parameters than today's (an older labspace)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


async def hash_in_turn(password: str) -> str:
    """hash_password on the hashing pool, in arrival order."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def verify_in_turn(password_hash: str | None, password: str) -> bool:
    """verify_password on the hashing pool, in arrival order."""
    return await asyncio.get_running_loop().run_in_executor(
        _pool, verify_password, password_hash, password)


def generate_password() -> str:
    """A one-time password people can type: 4 groups of 4 letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
