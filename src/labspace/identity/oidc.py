"""Single sign-on with an OpenID Connect provider (Keycloak, or any certified one): the
authorization code flow with PKCE, the ID token checked against the provider's keys.

The protocol's parts come from authlib (the authorization URL, the callback's parsing, PKCE)
and joserfc (authlib's JOSE library: signatures and claims); this module only puts them in
order. A login in flight is a :class:`PendingLogin` kept in a signed cookie of the browser
that started it (web/oidc.py), so a callback from another browser finds nothing to finish.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from labspace.config import Settings
from labspace.errors import Conflict, InvalidInput, NotAuthenticated, RuntimeFailure
from labspace.identity.authenticator import normalise
from labspace.identity.users import SINGLE_SIGN_ON, UserService
from labspace.state.models import User

log = logging.getLogger(__name__)

# Seconds of clock difference with the provider that are forgiven (exp, iat, nbf).
LEEWAY = 60
PRESET_SCOPES = {"generic": ("openid", "profile", "email"),
                 "keycloak": ("openid", "profile", "email")}
REFUSED = "the identity provider's answer could not be accepted; try again"


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    # Keycloak writes a group as its path ("/lab/phd"); the leading slash is dropped.
    strip_group_slash: bool = False
    uid_claim: str = ""
    gid_claim: str = ""
    ca_file: Path | None = None
    name: str = "single sign-on"
    allowed_groups: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig:
        preset = settings.oidc_preset
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=tuple(settings.oidc_scopes or PRESET_SCOPES[preset]),
            username_claim=settings.oidc_username_claim,
            groups_claim=settings.oidc_groups_claim,
            strip_group_slash=preset == "keycloak",
            uid_claim=settings.oidc_uid_claim,
            gid_claim=settings.oidc_gid_claim,
            ca_file=settings.oidc_ca_file,
            name=settings.oidc_name,
            allowed_groups=frozenset(g.lower() for g in settings.oidc_allowed_groups),
            admin_groups=frozenset(g.lower() for g in settings.oidc_admin_groups),
        )


@dataclass(frozen=True)
class PendingLogin:
    """What the callback needs to finish a login; kept by the browser, signed by the hub."""

    state: str
    nonce: str
    verifier: str
    next: str

    @classmethod
    def new(cls, next_path: str) -> PendingLogin:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                   secrets.token_urlsafe(48), next_path)


@dataclass(frozen=True)
class OidcIdentity:
    """Who the provider says logged in."""

    subject: str  # "sub": the provider's stable id of the person
    username: str
    groups: tuple[str, ...]
    uid: int | None
    gid: int | None


@dataclass
class OidcClient:
    config: OidcConfig
    redirect_uri: str
    _metadata: dict[str, Any] | None = field(default=None, repr=False)
    _keys: KeySet | None = field(default=None, repr=False)
    _keys_fetched: float = field(default=0.0, repr=False)
    _tls: ssl.SSLContext | None = field(default=None, repr=False)

    def _http(self) -> httpx.AsyncClient:
        # One SSL context for this client's life: building one loads the CA certificates,
        # ~40 ms of the event loop's CPU, and every login makes two or three requests.
        if self._tls is None:
            self._tls = (ssl.create_default_context(cafile=str(self.config.ca_file))
                         if self.config.ca_file else httpx.create_ssl_context())
        return httpx.AsyncClient(verify=self._tls, timeout=10.0, follow_redirects=False)

    async def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, **kwargs)
        except httpx.HTTPError as error:
            raise RuntimeFailure(
                f"the identity provider did not answer ({type(error).__name__})") from error
        if response.status_code != 200:
            raise RuntimeFailure(f"the identity provider answered {response.status_code} "
                                 f"at {url}")
        body: dict[str, Any] = response.json()
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, fetched once; its issuer must be ours."""
        if self._metadata is None:
            found = await self._get_json(
                f"{self.config.issuer}/.well-known/openid-configuration")
            if found.get("issuer", "").rstrip("/") != self.config.issuer:
                raise RuntimeFailure(
                    f"the identity provider calls itself {found.get('issuer')!r}, not "
                    f"{self.config.issuer!r} (oidc_issuer)")
            self._metadata = found
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        # Keys are fetched again for a token signed by an unknown key (the provider rotated
        # them), at most every 30 s, so forged tokens cannot make the hub hammer it.
        if self._keys is None or (refresh and time.monotonic() - self._keys_fetched > 30):
            metadata = await self.metadata()
            found = await self._get_json(metadata["jwks_uri"])
            self._keys = KeySet.import_key_set({"keys": list(found.get("keys", []))})
            self._keys_fetched = time.monotonic()
        return self._keys

    async def authorization_url(self, pending: PendingLogin) -> str:
        metadata = await self.metadata()
        url: str = prepare_grant_uri(
            metadata["authorization_endpoint"], self.config.client_id, "code",
            redirect_uri=self.redirect_uri, scope=" ".join(self.config.scopes),
            state=pending.state, nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256")
        return url

    async def finish(self, pending: PendingLogin, params: dict[str, str]) -> OidcIdentity:
        """The callback's parameters -> the identity, or NotAuthenticated."""
        if "error" in params:
            log.info("OIDC login ended by the provider: %s %s", params.get("error"),
                     params.get("error_description", ""))
            raise NotAuthenticated("the identity provider did not log you in")
        state, code = params.get("state", ""), params.get("code", "")
        if not code or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise NotAuthenticated("this login did not start in this browser; please try again")
        metadata = await self.metadata()
        # RFC 9207: a provider that names itself must be ours (a mix-up with another one).
        if "iss" in params and params["iss"].rstrip("/") != self.config.issuer:
            raise NotAuthenticated(REFUSED)
        tokens = await self._redeem(metadata, code, pending.verifier)
        claims = await self.verify_id_token(str(tokens.get("id_token", "")), pending.nonce)
        if metadata.get("userinfo_endpoint") and tokens.get("access_token"):
            claims = {**await self._userinfo(metadata, str(tokens["access_token"]),
                                             claims["sub"]), **claims}
        return self._identity(claims)

    async def _redeem(self, metadata: dict[str, Any], code: str,
                      verifier: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri, "code_verifier": verifier}
        try:
            async with self._http() as http:
                response = await http.post(
                    metadata["token_endpoint"], content=urlencode(form),
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Accept": "application/json"},
                    auth=(self.config.client_id, self.config.client_secret))
        except httpx.HTTPError as error:
            raise RuntimeFailure("the identity provider did not answer") from error
        if response.status_code != 200:
            # A code used twice, too old, or for another client: the provider's word.
            log.info("OIDC token request refused: %s %s", response.status_code,
                     response.text[:300])
            raise NotAuthenticated(REFUSED)
        body: dict[str, Any] = response.json()
        return body

    async def verify_id_token(self, raw: str, nonce: str, now: int | None = None
                              ) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce check
        out; NotAuthenticated otherwise."""
        metadata = await self.metadata()
        algorithms = [alg for alg in metadata.get("id_token_signing_alg_values_supported",
                                                  ["RS256"]) if alg != "none"]
        try:
            try:
                token = jwt.decode(raw, await self._key_set(), algorithms=algorithms)
            except (ValueError, JoseError):
                token = jwt.decode(raw, await self._key_set(refresh=True),
                                   algorithms=algorithms)
            jwt.JWTClaimsRegistry(
                now=now, leeway=LEEWAY,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (ValueError, JoseError) as error:
            log.warning("an ID token was refused: %s", error)
            raise NotAuthenticated(REFUSED) from error
        claims = dict(token.claims)
        audience = claims["aud"]
        # Several audiences: the token must have been issued to us (azp), not just name us.
        if isinstance(audience, list) and len(audience) > 1 and (
                claims.get("azp") != self.config.client_id):
            raise NotAuthenticated(REFUSED)
        return claims

    async def _userinfo(self, metadata: dict[str, Any], access_token: str,
                        subject: str) -> dict[str, Any]:
        info = await self._get_json(metadata["userinfo_endpoint"],
                                    headers={"Authorization": f"Bearer {access_token}"})
        if info.get("sub") != subject:  # OIDC core 5.3.2: else it is someone else's
            raise NotAuthenticated(REFUSED)
        return info

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        username = claims.get(self.config.username_claim)
        if not isinstance(username, str) or not username:
            raise NotAuthenticated(
                f"the identity provider sent no {self.config.username_claim!r}; an "
                "administrator can see why in the hub's log")
        groups = claims.get(self.config.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        names = tuple(
            (group.lstrip("/") if self.config.strip_group_slash else group).lower()
            for group in groups if isinstance(group, str) and group.strip("/"))
        return OidcIdentity(str(claims["sub"]), username, names,
                            _number(claims, self.config.uid_claim),
                            _number(claims, self.config.gid_claim))


async def sign_in(client: OidcClient, users: UserService, pending: PendingLogin,
                  params: dict[str, str]) -> User:
    """Finish a login at the provider: the account is created or updated from the claims
    (groups and admin rights at every login); allowed groups and a disabled account hold."""
    identity = await client.finish(pending, params)
    config, groups = client.config, set(identity.groups)
    if config.allowed_groups and not groups & config.allowed_groups:
        log.info("OIDC user %r is in none of the allowed groups", identity.username)
        raise NotAuthenticated("your account is not in a group that may use labspace; ask an "
                               "administrator")
    name = normalise(identity.username)
    try:
        user = await users.sync_external_user(
            SINGLE_SIGN_ON, name, uid=identity.uid, gid=identity.gid,
            groups=[{"name": group, "gid": None} for group in sorted(groups)],
            is_admin=bool(groups & config.admin_groups) if config.admin_groups else None,
            subject=identity.subject)
    except (Conflict, InvalidInput) as error:
        log.warning("OIDC user %r cannot log in: %s", identity.username, error.message)
        raise NotAuthenticated("your account at the identity provider cannot be used here; "
                               "an administrator can see why in the hub's log") from None
    if user.disabled:
        raise NotAuthenticated("this account is disabled; ask an administrator")
    return user


def _number(claims: dict[str, Any], claim: str) -> int | None:
    """A numeric id claim (FreeIPA's uidNumber through a Keycloak mapper is often a string)."""
    if not claim or claims.get(claim) in (None, ""):
        return None
    try:
        value = int(claims[claim])
    except (TypeError, ValueError):
        raise NotAuthenticated(f"the identity provider's {claim!r} is not a number") from None
    return value
