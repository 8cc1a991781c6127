"""The proxy's header rules (headers.py), both directions, as every forwarding path applies
them; end to end they are checked in test_proxy.py and test_forwarding.py."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from labspace.proxy.headers import (
    InvalidHeader,
    request_fields,
    response_headers,
    secret_field,
    upstream_head,
    upstream_headers,
)

SECRET = (b"Authorization", b"token s3cret")


def mocked(headers: list[tuple[str, str]], method: str = "GET"):
    return make_mocked_request(method, "/user/a/w/x", headers=CIMultiDict(headers))


def test_requests_lose_hop_by_hop_claims_and_credentials_and_get_the_secret() -> None:
    request = mocked([("Host", "hub.example"), ("Connection", "keep-alive, X-Hop"),
                      ("X-Hop", "1"), ("TE", "trailers"), ("Expect", "100-continue"),
                      ("X-Forwarded-For", "10.9.9.9"), ("Authorization", "Bearer user"),
                      ("Cookie", "a=1; labspace-session=x; __Host-labspace-app=y; b=2"),
                      ("X-Kept", "k")])
    fields = dict(request_fields(request, workspace=True, secret=SECRET))
    assert fields[b"Cookie"] == b"a=1; b=2"
    assert fields[b"Authorization"] == b"token s3cret"
    assert fields[b"X-Kept"] == b"k" and fields[b"Host"] == b"hub.example"
    assert fields[b"X-Forwarded-Host"] == b"hub.example"
    for gone in (b"Connection", b"X-Hop", b"TE", b"Expect"):
        assert gone not in fields
    assert fields[b"X-Forwarded-For"] != b"10.9.9.9"


def test_the_hub_gets_credentials_and_both_paths_send_the_same_fields() -> None:
    request = mocked([("Host", "h"), ("Cookie", "labspace-session=x"),
                      ("Authorization", "Bearer t")])
    proof = (b"X-Labspace-Proxy", b"proof")
    headers = upstream_headers(request, workspace=False, secret=proof)
    assert headers["Cookie"] == "labspace-session=x" and headers["Authorization"] == "Bearer t"
    head = upstream_head(request, "/hub/x?y", b"upstream:1", workspace=False, secret=proof)
    assert head.startswith(b"GET /hub/x?y HTTP/1.1\r\n") and head.endswith(b"\r\n\r\n")
    sent = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:-2]]
    assert [(k.decode(), v.decode()) for k, v in sent] == list(headers.items())


def test_a_client_without_host_gets_the_upstreams_and_cannot_send_the_secret_itself() -> None:
    request = make_mocked_request("GET", "/", headers=CIMultiDict(
        [("Authorization", "token forged")]))
    fields = request_fields(request, workspace=False, secret=SECRET, host=b"10.0.0.5:8888")
    assert (b"Host", b"10.0.0.5:8888") in fields
    assert [v for k, v in fields if k.lower() == b"authorization"] == [b"token s3cret"]


def test_responses_lose_hop_by_hop_service_worker_scope_and_foreign_cookies() -> None:
    raw = [(b"Connection", b"keep-alive, X-Hop"), (b"X-Hop", b"1"), (b"Keep-Alive", b"t=5"),
           (b"Transfer-Encoding", b"chunked"), (b"Service-Worker-Allowed", b"/"),
           (b"Set-Cookie", b"app=1; Path=/"), (b"Set-Cookie", b"labspace-session=p"),
           (b"Set-Cookie", b"wide=1; Domain=example.org"), (b"X-Kept", b"2")]
    headers = response_headers(raw, workspace=True)
    assert list(headers.items()) == [("Set-Cookie", "app=1; Path=/"), ("X-Kept", "2")]
    from_hub = response_headers(raw, workspace=False)
    assert from_hub.getall("Set-Cookie") == ["app=1; Path=/", "labspace-session=p",
                                             "wide=1; Domain=example.org"]


@pytest.mark.parametrize(("name", "value"), [("Authorization", "token x\r\nX-Injected: 1"),
                                             ("X Bad", "v"), ("Host", "v"), ("X-A\n", "v"),
                                             ("Transfer-Encoding", "chunked")])
def test_invalid_secrets_are_refused(name: str, value: str) -> None:
    with pytest.raises(InvalidHeader):
        secret_field(name, value)


def test_a_valid_secret_is_encoded_once() -> None:
    assert secret_field("X-Token", "v 1") is secret_field("X-Token", "v 1")
