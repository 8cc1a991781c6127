"""The ID token checks of single sign-on, against the real test provider's discovery and keys:
tokens signed with the provider's key as it would sign them, then tampered with, expired,
issued to another client or by another issuer, unsigned, or signed with another key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from labspace.errors import NotAuthenticated, RuntimeFailure
from labspace.identity.oidc import OidcClient, OidcConfig, PendingLogin
from tests.identity.conftest import CLIENT_ID, CLIENT_SECRET, OidcProvider, start_provider

NONCE = "the-nonce-of-this-login"


@pytest.fixture(scope="module")
def provider(oidc_provider_factory: list[OidcProvider]) -> Iterator[OidcProvider]:
    yield start_provider(oidc_provider_factory, ["http://127.0.0.1:9/hub/oidc/callback"])


def client_for(provider: OidcProvider, issuer: str | None = None) -> OidcClient:
    return OidcClient(OidcConfig(issuer or provider.issuer, CLIENT_ID, CLIENT_SECRET,
                                 ("openid",)), "http://127.0.0.1:9/hub/oidc/callback")


def claims(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "sub-alice", "iat": now,
            "exp": now + 300, "nonce": NONCE, **changes}


def signed(provider: OidcProvider, body: dict[str, Any], key: Any = None,
           alg: str = "RS256") -> str:
    key = key or provider.key
    return jwt.encode({"alg": alg, "kid": key.kid} if key.kid else {"alg": alg}, body, key)


async def test_a_token_as_the_provider_signs_it_is_accepted(provider: OidcProvider) -> None:
    found = await client_for(provider).verify_id_token(signed(provider, claims(provider)),
                                                       NONCE)
    assert found["sub"] == "sub-alice"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = "sub-admin"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _unsigned(body: dict[str, Any]) -> str:
    part = lambda value: base64.urlsafe_b64encode(  # noqa: E731
        json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(body)}."


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: _tampered(signed(p, claims(p))), id="tampered"),
    pytest.param(lambda p: signed(p, claims(p, exp=int(time.time()) - 3600)), id="expired"),
    pytest.param(lambda p: signed(p, claims(p, iat=int(time.time()) + 3600,
                                            exp=int(time.time()) + 7200)), id="from-future"),
    pytest.param(lambda p: signed(p, claims(p, aud="another-client")), id="other-client"),
    pytest.param(lambda p: signed(p, claims(p, aud=[CLIENT_ID, "another"], azp="another")),
                 id="other-azp"),
    pytest.param(lambda p: signed(p, claims(p, iss="http://localhost:1")), id="other-issuer"),
    pytest.param(lambda p: signed(p, claims(p, nonce="another-login")), id="other-nonce"),
    pytest.param(lambda p: signed(p, {k: v for k, v in claims(p).items() if k != "nonce"}),
                 id="no-nonce"),
    pytest.param(lambda p: _unsigned(claims(p)), id="alg-none"),
    pytest.param(lambda p: signed(p, claims(p), RSAKey.generate_key(2048, private=True,
                                                                   auto_kid=True)),
                 id="another-key"),
    pytest.param(lambda p: signed(p, claims(p), OctKey.import_key(
        json.dumps(p.key.as_dict(private=False)).encode()), alg="HS256"), id="hs256-confusion"),
    pytest.param(lambda p: "not.a.token", id="garbage"),
    pytest.param(lambda p: "", id="missing"),
])
async def test_a_token_that_is_not_the_providers_for_this_login_is_refused(
        provider: OidcProvider, make: Any) -> None:
    with pytest.raises(NotAuthenticated):
        await client_for(provider).verify_id_token(make(provider), NONCE)


async def test_a_provider_that_calls_itself_by_another_name_is_not_used(
        provider: OidcProvider) -> None:
    other = client_for(provider, provider.issuer.replace("localhost", "127.0.0.1"))
    with pytest.raises(RuntimeFailure, match="calls itself"):
        await other.authorization_url(PendingLogin.new("/hub/"))


async def test_the_authorization_request_carries_pkce_and_the_logins_secrets(
        provider: OidcProvider) -> None:
    pending = PendingLogin.new("/hub/")
    url = await client_for(provider).authorization_url(pending)
    assert url.startswith(f"{provider.issuer}/auth?")
    for part in (f"state={pending.state}", f"nonce={pending.nonce}",
                 "code_challenge_method=S256", "response_type=code"):
        assert part in url
    assert pending.verifier not in url  # only its hash travels


async def test_a_callback_with_an_error_or_another_state_is_refused_before_any_request(
        provider: OidcProvider) -> None:
    pending = PendingLogin.new("/hub/")
    client = client_for(provider)
    for params in ({"error": "access_denied"}, {"code": "c", "state": "other"},
                   {"state": pending.state}, {"code": "c", "state": pending.state,
                                              "iss": "http://localhost:1"}):
        with pytest.raises(NotAuthenticated):
            await client.finish(pending, params)
