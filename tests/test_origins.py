"""Workspace hosts: one origin per workspace, named injectively."""

from __future__ import annotations

import itertools

import pytest

from labspace.errors import InvalidInput
from labspace.names import validate_name
from labspace.origins import Origins, split_host

ORIGINS = Origins("https://lab.example.org", "apps.lab.example.org")
LOCAL = Origins("http://localhost:8000", "apps.localhost")


def test_hosts_round_trip_and_never_collide() -> None:
    names = ["a", "lab", "alice", "alice-lab", "lab-thesis", "thesis", "x1", "a-b-c"]
    hosts = {}
    for owner, workspace in itertools.product(names, names):
        host = ORIGINS.workspace_host(owner, workspace)
        assert ORIGINS.workspace_of(host) == (owner, workspace)
        assert ORIGINS.workspace_of(host.upper() + ":443") == (owner, workspace)
        assert host not in hosts, (hosts.get(host), (owner, workspace))
        hosts[host] = (owner, workspace)
    assert ORIGINS.workspace_host("alice-lab", "thesis") != ORIGINS.workspace_host(
        "alice", "lab-thesis")


def test_longest_names_fit_one_dns_label() -> None:
    longest = "a" * 30
    label = ORIGINS.workspace_host(longest, longest).split(".")[0]
    assert len(label) <= 63


@pytest.mark.parametrize("host", [
    "lab.example.org", "apps.lab.example.org", "evil.example.org", "x.apps.lab.example.org",
    "a---b.apps.lab.example.org", "a--b--c.apps.lab.example.org", "1--a.apps.lab.example.org",
    "a.b--c.apps.lab.example.org", "--a.apps.lab.example.org", "a--.apps.lab.example.org",
    "lab--alice.apps.lab.example.org.evil.org", "lab--aliceapps.lab.example.org",
])
def test_other_hosts_are_no_workspace(host: str) -> None:
    assert ORIGINS.workspace_of(host) is None


def test_names_with_two_dashes_in_a_row_are_refused() -> None:
    with pytest.raises(InvalidInput, match="two dashes"):
        validate_name("lab--alice")


def test_origins_keep_the_public_scheme_and_port() -> None:
    assert LOCAL.workspace_origin("alice", "lab") == "http://lab--alice.apps.localhost:8000"
    assert ORIGINS.workspace_origin("alice", "lab") == "https://lab--alice.apps.lab.example.org"
    assert ORIGINS.hub_origin == "https://lab.example.org"
    assert LOCAL.own_origin("Lab--Alice.apps.localhost:8000") == \
        "http://lab--alice.apps.localhost:8000"
    assert split_host("[::1]:8000") == "[::1]" and split_host("host:1") == "host"


def test_claim_hosts_round_trip_and_are_no_workspace_or_share() -> None:
    slot = "c0123456789abcdef"
    host = ORIGINS.claim_host(slot)
    assert host == "c0123456789abcdef.apps.lab.example.org"
    assert ORIGINS.claim_of(host) == slot and ORIGINS.claim_of(host.upper() + ":443") == slot
    assert ORIGINS.workspace_of(host) is None and ORIGINS.share_of(host) is None
    assert LOCAL.claim_origin(slot) == "http://c0123456789abcdef.apps.localhost:8000"
    for other in ("lab--alice.apps.lab.example.org", "8888-lab--alice.apps.lab.example.org",
                  "c0123456789abcde.apps.lab.example.org", "C0123456789ABCDEF.evil.org",
                  "x.c0123456789abcdef.apps.lab.example.org", "c0123456789abcdef.lab.example.org"):
        assert ORIGINS.claim_of(other) is None, other
    with pytest.raises(ValueError):
        Origins("https://lab.example.org").claim_host(slot)
    with pytest.raises(ValueError):
        ORIGINS.claim_host("lab--alice")
