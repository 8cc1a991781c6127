"""Login throttling: pure logic with an injected clock."""

from labspace.errors import TooManyAttempts
from labspace.identity.throttle import LoginThrottle, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(throttle: LoginThrottle, username: str, address: str) -> int | None:
    """The Retry-After of a refused attempt, or None when the attempt would be checked."""
    try:
        throttle.check(username, address)
    except TooManyAttempts as error:
        assert error.http_status == 429
        return error.retry_after
    return None


def fail(throttle: LoginThrottle, username: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        assert refused(throttle, username, address) is None
        throttle.failed(username, address)


def test_blocks_a_pair_after_repeated_failures_then_forgives() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window=60, clock=clock)
    fail(throttle, "ada", "10.0.0.1", 3)
    wait = refused(throttle, "ada", "10.0.0.1")
    assert wait is not None and 0 < wait <= 61
    assert refused(throttle, "ada", "10.0.0.2") is None  # another address is not blocked
    assert refused(throttle, "bob", "10.0.0.1") is None  # nor another account
    clock.now += 61
    assert refused(throttle, "ada", "10.0.0.1") is None  # the window passed


def test_success_resets_the_pair() -> None:
    throttle = LoginThrottle(max_failures=2, window=60)
    throttle.failed("ada", "a")
    throttle.succeeded("ada", "a")
    throttle.failed("ada", "a")
    assert refused(throttle, "ada", "a") is None


def test_one_address_cannot_lock_out_a_classroom_behind_it() -> None:
    """A guesser behind the classroom's NAT locks only the account it guesses, from there."""
    throttle = LoginThrottle(clock=Clock())
    nat = "192.0.2.7"
    fail(throttle, "ada", nat, 5)
    assert refused(throttle, "ada", nat) is not None
    for student in range(60):  # a whole class logging in, some with a typo first
        if student % 3 == 0:
            fail(throttle, f"student{student}", nat)
        assert refused(throttle, f"student{student}", nat) is None
        throttle.succeeded(f"student{student}", nat)


def test_an_account_under_attack_still_lets_its_owner_in_from_a_fresh_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(account_failures=20, account_window=900, clock=clock)
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
    clock.now += 901
    assert refused(throttle, "ada", "203.0.113.3") is None  # the attack is over


def test_spraying_many_accounts_from_one_address_blocks_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(address_accounts=100, address_window=300, clock=clock)
    for account in range(99):
        fail(throttle, f"user{account}", "198.51.100.9")
    assert refused(throttle, "anyone", "198.51.100.9") is None  # 99 accounts: not yet
    fail(throttle, "user99", "198.51.100.9")
    wait = refused(throttle, "anyone", "198.51.100.9")
    assert wait is not None and 0 < wait <= 301
    assert refused(throttle, "user1", "198.51.100.10") is None  # only that address
    clock.now += 301
    assert refused(throttle, "anyone", "198.51.100.9") is None


def test_spraying_counts_only_recent_accounts_and_not_the_ones_that_got_in() -> None:
    clock = Clock()
    throttle = LoginThrottle(address_accounts=10, address_window=300, clock=clock)
    for account in range(9):
        fail(throttle, f"old{account}", "nat")
    clock.now += 301  # those failures are too old to count
    for account in range(9):
        fail(throttle, f"new{account}", "nat")
        throttle.succeeded(f"new{account}", "nat")  # a typo, then the right password
    fail(throttle, "last", "nat")
    assert refused(throttle, "last", "nat") is None


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    throttle = LoginThrottle(max_failures=2, clock=Clock())
    fail(throttle, "ada", "2001:db8:1:2::1")
    fail(throttle, "ada", "2001:db8:1:2:ffff::9")  # same /64: same attacker
    assert refused(throttle, "ada", "2001:db8:1:2::77") is not None
    assert refused(throttle, "ada", "2001:db8:1:3::1") is None
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("not an address") == "not an address"


def test_memory_is_bounded_by_time_and_by_size() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_entries=1000, clock=clock)
    for i in range(5000):
        throttle.failed(f"name{i}", f"10.{i // 250}.{i % 250}.1")
    sizes = (len(throttle._pairs), len(throttle._accounts), len(throttle._sprayed))
    assert max(sizes) <= 1000
    clock.now += 901  # everything is too old to matter: the next failure sweeps it away
    throttle.failed("late", "10.9.9.9")
    assert (len(throttle._pairs), len(throttle._accounts), len(throttle._sprayed)) == (1, 1, 1)
