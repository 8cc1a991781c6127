"""Tickets and workspace-host cookies: bound to one host, short-lived, unforgeable."""

from __future__ import annotations

from labspace.identity.hostauth import TICKET_TTL, HostSigner

HOST = "lab--alice.apps.localhost"
SESSION = "ab" * 32


def test_a_ticket_opens_only_its_host_and_only_while_fresh() -> None:
    signer = HostSigner("k" * 40)
    ticket = signer.ticket(HOST, SESSION, now=1000)
    opened = signer.open_ticket(ticket, HOST, now=1000 + TICKET_TTL - 1)
    assert opened is not None and opened.session_digest == SESSION and opened.nonce
    assert signer.open_ticket(ticket, "thesis--bob.apps.localhost", now=1000) is None
    assert signer.open_ticket(ticket, HOST, now=1000 + TICKET_TTL + 1) is None
    assert signer.ticket(HOST, SESSION, now=1000) != ticket  # a fresh nonce each time


def test_forged_or_crossed_values_fail() -> None:
    signer, other = HostSigner("k" * 40), HostSigner("another key" * 4)
    ticket = signer.ticket(HOST, SESSION)
    cookie = signer.cookie(HOST, SESSION)
    assert signer.open_cookie(cookie, HOST) == SESSION
    assert signer.open_cookie(cookie, "thesis--bob.apps.localhost") is None
    assert other.open_cookie(cookie, HOST) is None and other.open_ticket(ticket, HOST) is None
    # a ticket is no cookie and a cookie no ticket (separate derived keys)
    assert signer.open_cookie(ticket, HOST) is None
    assert signer.open_ticket(cookie, HOST) is None
    body, mac = cookie.rsplit(".", 1)
    assert signer.open_cookie(f"{body}x.{mac}", HOST) is None
    for junk in ("", "v1", "v1..", "v2.a.b", "v1.!!!.???", "x" * 5000):
        assert signer.open_cookie(junk, HOST) is None and signer.open_ticket(junk, HOST) is None


CLAIM_HOST = "c0123456789abcdef.apps.localhost"
CLAIM = "cd" * 32


def test_a_claim_ticket_opens_only_its_host_and_only_while_fresh() -> None:
    signer = HostSigner("k" * 40)
    ticket = signer.claim_ticket(CLAIM_HOST, "intro", CLAIM, now=1000)
    opened = signer.open_claim_ticket(ticket, CLAIM_HOST, now=1000 + TICKET_TTL - 1)
    assert opened is not None and (opened.app, opened.claim_digest) == ("intro", CLAIM)
    assert opened.nonce
    assert signer.open_claim_ticket(ticket, "cfedcba9876543210.apps.localhost", now=1000) is None
    assert signer.open_claim_ticket(ticket, CLAIM_HOST, now=1000 + TICKET_TTL + 1) is None
    assert signer.claim_ticket(CLAIM_HOST, "intro", CLAIM, now=1000) != ticket


def test_claim_values_are_no_workspace_values_and_cannot_be_forged() -> None:
    signer, other = HostSigner("k" * 40), HostSigner("another key" * 4)
    ticket = signer.claim_ticket(CLAIM_HOST, "intro", CLAIM)
    cookie = signer.claim_cookie(CLAIM_HOST, CLAIM)
    assert signer.open_claim_cookie(cookie, CLAIM_HOST) == CLAIM
    assert signer.open_claim_cookie(cookie, "cfedcba9876543210.apps.localhost") is None
    assert other.open_claim_cookie(cookie, CLAIM_HOST) is None
    assert other.open_claim_ticket(ticket, CLAIM_HOST) is None
    # Each kind under its own salt: none passes for another, whatever the host.
    workspace_ticket, workspace_cookie = signer.ticket(CLAIM_HOST, CLAIM), signer.cookie(
        CLAIM_HOST, CLAIM)
    for value in (workspace_ticket, workspace_cookie, cookie):
        assert signer.open_claim_ticket(value, CLAIM_HOST) is None
    for value in (workspace_ticket, workspace_cookie, ticket):
        assert signer.open_claim_cookie(value, CLAIM_HOST) is None
    assert signer.open_ticket(ticket, CLAIM_HOST) is None
    assert signer.open_cookie(cookie, CLAIM_HOST) is None
    for junk in ("", "x" * 5000, cookie + "x"):
        assert signer.open_claim_cookie(junk, CLAIM_HOST) is None
        assert signer.open_claim_ticket(junk, CLAIM_HOST) is None
