"""A real OpenID Connect provider for the single sign-on tests: the OpenID-certified
`oidc-provider` package (tests/identity/oidc_provider, installed by scripts/ensure-test-deps.sh)
on Node.js, on loopback. The test knows its signing key, so it can also sign tokens the way
the provider would, and tamper with them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from labspace.testing import free_port
from labspace.testing.stack import wait_http

PROGRAM = Path(__file__).parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "labspace", "labspace-test-client-secret-0123456789"


@dataclass
class OidcProvider:
    root: Path
    port: int = field(default_factory=free_port)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True,
                                                                     auto_kid=True))
    redirect_uris: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def accounts_file(self) -> Path:
        return self.root / "accounts.json"

    def set_account(self, login: str, password: str, sub: str, **claims: Any) -> None:
        """Add or change an account (read by the provider at each use)."""
        accounts = json.loads(self.accounts_file.read_text()) if (
            self.accounts_file.exists()) else {}
        accounts[login] = {"password": password, "sub": sub, "claims": claims}
        self.accounts_file.write_text(json.dumps(accounts))

    def start(self) -> OidcProvider:
        if not (PROGRAM / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("the test provider is not installed: bash "
                               "scripts/ensure-test-deps.sh (npm ci in tests/identity/"
                               "oidc_provider)")
        if not self.accounts_file.exists():
            self.accounts_file.write_text("{}")
        env = dict(os.environ, PORT=str(self.port), OIDC_ACCOUNTS=str(self.accounts_file),
                   OIDC_JWKS=json.dumps({"keys": [self.key.as_dict(private=True)]}),
                   OIDC_CLIENTS=json.dumps([{
                       "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "redirect_uris": self.redirect_uris}]))
        log = open(self.root / "provider.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", "provider.mjs"], cwd=PROGRAM, env=env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_http(f"{self.issuer}/.well-known/openid-configuration", 30, self.process,
                  self.root / "provider.log")
        return self

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """A labspace's settings for this provider, as environment variables."""
        return {"LABSPACE_OIDC_ISSUER": self.issuer, "LABSPACE_OIDC_CLIENT_ID": CLIENT_ID,
                "LABSPACE_OIDC_CLIENT_SECRET": CLIENT_SECRET, **overrides}


@pytest.fixture(scope="module")
def oidc_provider_factory() -> Iterator[list[OidcProvider]]:
    """Providers a module starts (each told its client's redirect URIs); all closed after."""
    started: list[OidcProvider] = []
    yield started
    for provider in started:
        provider.close()


def start_provider(started: list[OidcProvider], redirect_uris: list[str]) -> OidcProvider:
    provider = OidcProvider(Path(tempfile.mkdtemp(prefix="labspace-oidc-")),
                            redirect_uris=redirect_uris)
    started.append(provider)
    return provider.start()
