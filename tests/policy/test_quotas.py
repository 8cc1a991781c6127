"""The quota arithmetic alone: what a workspace takes, which quotas bind whom, the messages."""

from __future__ import annotations

import pytest

from labspace.errors import QuotaExceeded
from labspace.policy.quotas import (
    Capacity,
    Quota,
    QuotaLimits,
    Resources,
    applicable,
    check,
    check_all,
    demand,
    size_text,
)
from labspace.templates.model import LimitSpec

GIB = 1024**3
HOST = Capacity(cpus=64, memory_bytes=256 * GIB)


def test_demand_counts_limits_and_the_host_where_there_is_none() -> None:
    assert demand(LimitSpec(cpus=2, memory="4g"), HOST) == Resources(2, 4 * GIB, 0, 1)
    assert demand(LimitSpec(), HOST) == Resources(64, 256 * GIB, 0, 1)
    assert demand(LimitSpec(cpus=1, memory="1g", gpus=3), HOST).gpus == 3
    assert demand(LimitSpec(cpus=1, memory="1g", shared_gpu=True), HOST).gpus == 1
    assert demand(LimitSpec(cpus=1, memory="1g", gpus=0), HOST).gpus == 0


def test_applicable_is_the_users_own_then_their_groups() -> None:
    quotas = [Quota("group", "phd", QuotaLimits(cpus=8)), Quota("user", "ada", QuotaLimits()),
              Quota("group", "interns", QuotaLimits()), Quota("user", "bob", QuotaLimits()),
              Quota("group", "alpha", QuotaLimits())]
    found = applicable(quotas, "ada", ["phd", "alpha", "staff"])
    assert [quota.key for quota in found] == [("user", "ada"), ("group", "alpha"),
                                              ("group", "phd")]
    assert applicable(quotas, "eve", []) == []


@pytest.mark.parametrize(("limits", "in_use", "ask", "message"), [
    (QuotaLimits(cpus=8), Resources(cpus=6, running=2), Resources(cpus=4, running=1),
     "group phd may use at most 8 CPUs at once and its members use 6 CPUs; this workspace "
     "asks for 4 CPUs: stop one first"),
    (QuotaLimits(memory_bytes=16 * GIB), Resources(memory_bytes=12 * GIB, running=2),
     Resources(memory_bytes=8 * GIB), "group phd may use at most 16 GiB of memory at once "
     "and its members use 12 GiB; this workspace asks for 8 GiB: stop one first"),
    (QuotaLimits(gpus=2), Resources(gpus=2, running=1), Resources(gpus=1),
     "group phd may use at most 2 GPUs at once and its members use 2 GPUs; this workspace "
     "asks for 1 GPU: stop one first"),
    (QuotaLimits(running=3), Resources(running=3), Resources(running=1),
     "group phd may run at most 3 workspace(s) at once and its members run 3: stop one "
     "first"),
])
def test_each_refusal_names_the_quota_the_use_and_the_ask(
        limits: QuotaLimits, in_use: Resources, ask: Resources, message: str) -> None:
    with pytest.raises(QuotaExceeded) as refused:
        check(Quota("group", "phd", limits), in_use, ask)
    assert refused.value.message == message
    assert refused.value.quota == ("group", "phd") and refused.value.http_status == 409
    user = message.replace("group phd", "user ada").replace("its members use", "uses")
    with pytest.raises(QuotaExceeded) as mine:
        check(Quota("user", "ada", limits), in_use, ask)
    assert mine.value.message == user.replace("its members run", "runs")


def test_exactly_full_passes_and_fractions_add_up() -> None:
    quota = Quota("user", "ada", QuotaLimits(cpus=0.3, memory_bytes=2 * GIB, gpus=1, running=2))
    check(quota, Resources(0.1, GIB, 0, 1), Resources(0.2, GIB, 1, 1))  # 0.1 + 0.2 fits 0.3
    with pytest.raises(QuotaExceeded) as refused:
        check(quota, Resources(0.1, GIB, 0, 1), Resources(0.25, 0, 0, 1))
    assert refused.value.message == ("user ada may use at most 0.3 CPUs at once and uses "
                                     "0.1 CPUs; this workspace asks for 0.25 CPUs: stop one "
                                     "first")


def test_with_nothing_running_stopping_is_no_advice() -> None:
    with pytest.raises(QuotaExceeded) as refused:
        check(Quota("user", "ada", QuotaLimits(cpus=2)), Resources(), Resources(4, 0, 0, 1))
    assert refused.value.message == ("user ada may use at most 2 CPUs at once and uses 0 "
                                     "CPUs; this workspace asks for 4 CPUs: ask an "
                                     "administrator")


def test_a_point_asked_nothing_of_never_refuses() -> None:
    """A quota lowered below its use blocks only what would add to it."""
    quota = Quota("user", "ada", QuotaLimits(gpus=1))
    check(quota, Resources(gpus=3, running=3), Resources(cpus=1, running=1))
    with pytest.raises(QuotaExceeded):
        check(quota, Resources(gpus=3), Resources(gpus=1, running=1))


def test_check_all_names_the_first_quota_passed() -> None:
    mine = Quota("user", "ada", QuotaLimits(cpus=100))
    group = Quota("group", "phd", QuotaLimits(cpus=4))
    with pytest.raises(QuotaExceeded) as refused:
        check_all([(mine, Resources(cpus=1)), (group, Resources(cpus=3))],
                  Resources(cpus=2, running=1))
    assert refused.value.quota == ("group", "phd") and refused.value.resource == "cpus"


def test_sizes_read_as_people_read_them() -> None:
    assert size_text(512 * 1024**2) == "512 MiB"
    assert size_text(1.5 * GIB) == "1.5 GiB"
    assert size_text(3 * 1024**4) == "3 TiB"
