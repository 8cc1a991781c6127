"""Login throttling: pure logic with an injected clock."""

import pytest

from labspace.errors import TooManyAttempts
from labspace.identity.throttle import LoginThrottle


def test_blocks_after_repeated_failures_then_forgives() -> None:
    now = [1000.0]
    throttle = LoginThrottle(max_failures=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("ada", "10.0.0.1")
        throttle.failed("ada", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as blocked:
        throttle.check("ada", "10.0.0.1")
    assert blocked.value.http_status == 429 and 0 < blocked.value.retry_after <= 61
    throttle.check("ada", "10.0.0.2")  # another address is not blocked
    throttle.check("bob", "10.0.0.1")  # nor another account
    now[0] += 61
    throttle.check("ada", "10.0.0.1")  # the window passed


def test_success_resets_the_count() -> None:
    throttle = LoginThrottle(max_failures=2, window=60)
    throttle.failed("ada", "a")
    throttle.succeeded("ada", "a")
    throttle.failed("ada", "a")
    throttle.check("ada", "a")
