"""Login throttling: the pure rules over a list of failures, with a made-up clock."""

from typing import Any

from labspace.errors import TooManyAttempts
from labspace.identity.throttle import Failure, ThrottleRules, address_key


class Throttle:
    """The rules over a plain list, recorded as identity/failedlogins.py records them in the
    database (its own tests check that it does)."""

    def __init__(self, now: float = 1000.0, **limits: Any) -> None:
        self.now = now
        self.rules = ThrottleRules(**limits)
        self.failures: list[Failure] = []

    def check(self, username: str, address: str) -> None:
        self.rules.check(username, address, self.failures, self.now)

    def failed(self, username: str, address: str) -> None:
        self.failures.append(Failure(username, address_key(address), self.now))

    def succeeded(self, username: str, address: str) -> None:
        key = address_key(address)
        self.failures = [
            Failure(f.account, f.address, f.at, True)
            if (f.account, f.address) == (username, key) else f
            for f in self.failures
        ]


def refused(throttle: Throttle, username: str, address: str) -> int | None:
    """The Retry-After of a refused attempt, or None when the attempt would be checked."""
    try:
        throttle.check(username, address)
    except TooManyAttempts as error:
        assert error.http_status == 429
        return error.retry_after
    return None


def fail(throttle: Throttle, username: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        assert refused(throttle, username, address) is None
        throttle.failed(username, address)


def test_blocks_a_pair_after_repeated_failures_then_forgives() -> None:
    throttle = Throttle(max_failures=3, window=60)
    fail(throttle, "ada", "10.0.0.1", 3)
    wait = refused(throttle, "ada", "10.0.0.1")
    assert wait is not None and 0 < wait <= 61
    assert refused(throttle, "ada", "10.0.0.2") is None  # another address is not blocked
    assert refused(throttle, "bob", "10.0.0.1") is None  # nor another account
    throttle.now += 61
    assert refused(throttle, "ada", "10.0.0.1") is None  # the window passed


def test_success_resets_the_pair() -> None:
    throttle = Throttle(max_failures=2, window=60)
    throttle.failed("ada", "a")
    throttle.succeeded("ada", "a")
    throttle.failed("ada", "a")
    assert refused(throttle, "ada", "a") is None


def test_one_address_cannot_lock_out_a_classroom_behind_it() -> None:
    """A guesser behind the classroom's NAT locks only the account it guesses, from there."""
    throttle = Throttle()
    nat = "192.0.2.7"
    fail(throttle, "ada", nat, 5)
    assert refused(throttle, "ada", nat) is not None
    for student in range(60):  # a whole class logging in, some with a typo first
        if student % 3 == 0:
            fail(throttle, f"student{student}", nat)
        assert refused(throttle, f"student{student}", nat) is None
        throttle.succeeded(f"student{student}", nat)


def test_an_account_under_attack_still_lets_its_owner_in_from_a_fresh_address() -> None:
    throttle = Throttle(account_failures=20, account_window=900)
    for bot in range(10):  # guessers rotate addresses, two tries each: rule 1 never trips
        fail(throttle, "ada", f"203.0.113.{bot}", 2)
    # Under attack now: every address that failed for ada is refused, even below rule 1 ...
    wait = refused(throttle, "ada", "203.0.113.3")
    assert wait is not None and 0 < wait <= 901
    # ... a new guesser gets one try (the password is checked), then it is refused too ...
    fail(throttle, "ada", "198.51.100.1")
    assert refused(throttle, "ada", "198.51.100.1") is not None
    # ... and ada, from an address that never failed for her, is checked: she gets in.
    assert refused(throttle, "ada", "192.0.2.50") is None
    throttle.succeeded("ada", "192.0.2.50")
    assert refused(throttle, "bob", "203.0.113.3") is None  # other accounts are untouched
    throttle.now += 901
    assert refused(throttle, "ada", "203.0.113.3") is None  # the attack is over


def test_spraying_many_accounts_from_one_address_blocks_the_address() -> None:
    throttle = Throttle(address_accounts=100, address_window=300)
    for account in range(99):
        fail(throttle, f"user{account}", "198.51.100.9")
    assert refused(throttle, "anyone", "198.51.100.9") is None  # 99 accounts: not yet
    fail(throttle, "user99", "198.51.100.9")
    wait = refused(throttle, "anyone", "198.51.100.9")
    assert wait is not None and 0 < wait <= 301
    assert refused(throttle, "user1", "198.51.100.10") is None  # only that address
    throttle.now += 301
    assert refused(throttle, "anyone", "198.51.100.9") is None


def test_spraying_counts_only_recent_accounts_and_not_the_ones_that_got_in() -> None:
    throttle = Throttle(address_accounts=10, address_window=300)
    for account in range(9):
        fail(throttle, f"old{account}", "nat")
    throttle.now += 301  # those failures are too old to count
    for account in range(9):
        fail(throttle, f"new{account}", "nat")
        throttle.succeeded(f"new{account}", "nat")  # a typo, then the right password
    fail(throttle, "last", "nat")
    assert refused(throttle, "last", "nat") is None


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    throttle = Throttle(max_failures=2)
    fail(throttle, "ada", "2001:db8:1:2::1")
    fail(throttle, "ada", "2001:db8:1:2:ffff::9")  # same /64: same attacker
    assert refused(throttle, "ada", "2001:db8:1:2::77") is not None
    assert refused(throttle, "ada", "2001:db8:1:3::1") is None
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("not an address") == "not an address"


def test_a_spray_blocks_the_address_for_a_whole_window_from_the_failure_that_tripped_it() -> None:
    throttle = Throttle(address_accounts=10, address_window=300)
    start = throttle.now
    for account in range(10):  # one every 25 seconds: the 10th at start + 225
        throttle.now = start + 25 * account
        fail(throttle, f"user{account}", "198.51.100.9")
    throttle.now = start + 400  # most of those failures are out of the window now ...
    wait = refused(throttle, "anyone", "198.51.100.9")
    assert wait == 126  # ... but the block lasts 300 seconds from the 10th (start + 525)
    throttle.now = start + 525
    assert refused(throttle, "anyone", "198.51.100.9") is None


def test_the_longest_wait_is_the_one_given() -> None:
    """A pair refused by rule 1 from an address that rule 3 blocks longer waits for both."""
    throttle = Throttle(max_failures=2, window=60, address_accounts=3, address_window=300)
    fail(throttle, "ada", "nat", 2)
    fail(throttle, "bob", "nat")
    fail(throttle, "cy", "nat")
    assert refused(throttle, "ada", "nat") == 301
