"""Password hashes: argon2id with OWASP's minimum parameters for every account, computed on
the hashing pool in arrival order; a wrong or broken one verifies nothing."""

from __future__ import annotations

import asyncio

from labspace.identity import passwords
from labspace.identity.passwords import (
    generate_password,
    hash_in_turn,
    hash_password,
    needs_rehash,
    verify_in_turn,
    verify_password,
)


def test_every_password_gets_the_same_profile() -> None:
    for password in ("correct horse battery", generate_password()):
        stored = hash_password(password)
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert verify_password(stored, password) and not needs_rehash(stored)
        assert not verify_password(stored, password + " ")


def test_no_hash_or_a_broken_one_verifies_nothing() -> None:
    assert not verify_password(None, "x")
    assert not verify_password("", "x")
    assert not verify_password("$argon2id$garbage", "x")
    assert not needs_rehash("$argon2id$garbage")


async def test_a_burst_is_served_in_arrival_order() -> None:
    """Twenty logins at once: they finish in the order they came (a semaphore let late
    arrivals overtake, and one login waited out the whole burst)."""
    stored = await hash_in_turn("analytical-engine-1843")
    finished: list[int] = []

    async def check(n: int) -> None:
        assert await verify_in_turn(stored, "analytical-engine-1843")
        finished.append(n)
    await asyncio.gather(*(check(n) for n in range(20)))
    if passwords._pool._max_workers == 1:
        assert finished == list(range(20))
    else:  # with several workers, neighbours may swap; nobody waits for everyone
        assert sorted(finished) == list(range(20))
        assert max(abs(n - i) for i, n in enumerate(finished)) < passwords._pool._max_workers * 2
