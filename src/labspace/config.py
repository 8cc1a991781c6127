"""Settings: one TOML file plus ``LABSPACE_*`` environment variables, built at start-up.

Precedence, highest first: keyword arguments (tests), environment variables, the TOML file,
the defaults below. ``labspace config reference`` prints the documented reference generated
from this model, so the docs can never drift from the code.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from labspace.identity.credentials import SECURE_SESSION_COOKIE, SESSION_COOKIE
from labspace.identity.passwordpolicy import (
    DEFAULT_MIN_LENGTH,
    LOWEST_MIN_LENGTH,
    MAX_LENGTH,
)
from labspace.names import NAME_PATTERN
from labspace.policy.model import AccessRule, ProfileSpec

DEFAULT_CONFIG_FILE = Path("/etc/labspace/labspace.toml")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")  # at least two labels: apps.localhost


def _is_local_host(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


def config_file() -> Path:
    return Path(os.environ.get("LABSPACE_CONFIG", str(DEFAULT_CONFIG_FILE)))


class Settings(BaseSettings):
    """labspace's configuration. Every field is documented; the docs are generated from it."""

    model_config = SettingsConfigDict(env_prefix="LABSPACE_", extra="forbid")

    data_dir: Path = Field(
        Path("/var/lib/labspace"),
        description="Where labspace keeps its database, secrets, logs and (by default) homes.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database. Default: SQLite file labspace.db in "
        "data_dir. PostgreSQL: postgresql+asyncpg://user:password@host/dbname.",
    )
    homes_dir: Path | None = Field(
        None,
        description="Host directory holding one home per user (the lab's NFS mount in "
        "production). Default: data_dir/homes.",
    )
    shared_dir: Path | None = Field(
        None, description="A lab-wide folder on the host (the NAS), mounted at /shared in "
        "every workspace. Created mode 1777 (sticky) when missing. Default: none.")
    shared_read_only: bool = Field(False, description="Mount /shared read-only.")
    group_folders_dir: Path | None = Field(
        None, description="Host directory of the groups' folders: <dir>/<group>, owned by "
        "the group's gid, mode 2770, mounted at /groups/<group> in its members' workspaces "
        "only (groups with a gid: the directory's). Membership changes apply at the next "
        "start. Default: none.")
    group_folders: list[str] = Field(default_factory=list, description="Only these groups "
                                     "get a folder (empty: every group with a gid).")
    group_folders_read_only: list[str] = Field(default_factory=list, description="These "
                                               "groups' folders are mounted read-only.")
    profiles: dict[str, ProfileSpec] = Field(
        default_factory=dict, description="Resource profiles a workspace may start with, "
        "instead of its template's limits: `[profiles.phd]` with `display_name` and `limits "
        "= {cpus = 16, memory = \"64g\"}`. See docs/admin.md, \"Groups, profiles and "
        "roles\".")
    access: dict[str, AccessRule] = Field(
        default_factory=dict, description="What each group's members may use: "
        "`[access.interns]` with `templates`, `profiles` (the first is the default) and "
        "`max_workspaces`; `[access.\"*\"]` for those in no listed group. No rules: no "
        "restriction. Admins are never restricted.")
    instructor_groups: list[str] = Field(
        default_factory=list, description="Members of these groups are instructors: they "
        "create workshops and manage their own (admins can also make a local account one).")
    public_host: str = Field("0.0.0.0", description="Address the public proxy listens on.")
    public_port: int = Field(8000, description="The one public port (proxy: UI, API, apps).")
    public_url: str | None = Field(
        None,
        description="URL people use to reach labspace, e.g. https://lab.example.org. "
        "Default: http://<host name>:<public_port>.",
    )
    apps_domain: str | None = Field(
        None,
        description="Domain under which each workspace gets a host of its own, e.g. "
        "apps.lab.example.org (needs wildcard DNS and a wildcard certificate for "
        "*.apps.lab.example.org); any name under localhost works on one machine. Unset: "
        "workspaces are served under /user/ on labspace's own address and only their owner "
        "may open them in a browser.",
    )
    trusted_proxies: list[str] = Field(
        [],
        description="Addresses (or networks) of the reverse proxies in front of the public "
        'port, e.g. ["127.0.0.1"] for nginx on the same machine: only their '
        "X-Forwarded-For and X-Forwarded-Proto are believed. Anybody else's are ignored.",
    )
    hub_host: str = Field("127.0.0.1", description="Address the hub listens on (internal).")
    hub_port: int = Field(8081, description="Port the hub listens on (internal; the proxy "
                          "forwards /hub/ to it).")
    instance: str = Field(
        "default",
        description="Name of this labspace installation; labels every container it owns so "
        "several installations can share one Docker engine.",
    )
    runtime: Literal["docker", "swarm"] = Field(
        "docker",
        description="Where workspaces run: \"docker\", this host's engine; \"swarm\", any node "
        "of the Docker swarm this host manages (see docs/admin.md, \"Several servers\").",
    )
    swarm_gateway_image: str = Field(
        "", description="runtime = \"swarm\": image of the gateway container through which "
        "this host reaches workspaces on every node (any image with `sleep`, present on this "
        "host). Default: default_image_tag.",
    )
    swarm_guard_image: str = Field(
        "", description="runtime = \"swarm\": image of the node guard, the service that keeps "
        "workspaces off every node's own ports (needs iptables; build it with `labspace image "
        "build node-guard` and push it where every node can pull it).",
    )
    docker_url: str | None = Field(
        None, description="Docker engine URL. Default: DOCKER_HOST or the local socket."
    )
    docker_network: str = Field(
        "labspace",
        description="Docker bridge network for workspaces; created with inter-container "
        "traffic disabled so no workspace reaches another's ports.",
    )
    isolate_host: bool = Field(
        True,
        description="Block workspaces from every port of the host except public_port "
        "(an iptables chain on the workspaces' bridge).",
    )
    start_timeout: float = Field(
        180.0, description="Seconds a workspace may take from request to a healthy app."
    )
    placement_timeout: float = Field(
        900.0, description="Seconds a start may wait for a node with room (runtime = "
        "\"swarm\"); it shows \"waiting for capacity\" meanwhile and can be cancelled.",
    )
    stop_timeout: float = Field(
        10.0, description="Seconds a workspace's processes get to exit before they are killed."
    )
    idle_check_interval: float = Field(
        30.0, ge=0, description="Seconds between checks for workspaces idle longer than "
        "their template's or profile's idle_stop_after (they are stopped; homes are kept); "
        "0: no idle stops.")
    max_parallel_starts: int = Field(
        8,
        description="Container creations/starts sent to the engine at once; more requests "
        "queue (they are never refused).",
    )
    gpu_discovery: bool = Field(
        True, description="Look for NVIDIA GPUs through NVML at start (none found without "
        "the driver); false: this hub hands out no GPU. See docs/admin.md, \"GPUs\".")
    gpu_cdi_dirs: list[str] = Field(
        ["/etc/cdi", "/var/run/cdi"],
        description="Where the NVIDIA container toolkit's CDI specification is looked for "
        "(`nvidia-ctk cdi generate`, JSON or YAML): it lists the driver's files handed into "
        "GPU workspaces. Without one they are found on the host as the toolkit does.")
    gpu_share_limit: int = Field(
        8, ge=1, le=64, description="Workspaces that may share one GPU at once (shared_gpu); "
        "one more waits for a GPU.")
    reconcile_interval: float = Field(
        30.0, description="Seconds between comparisons of the database with the engine."
    )
    load_interval: float = Field(
        2.0, ge=0.5, le=60,
        description="Seconds between samples of the servers' and workspaces' load while "
        "someone has the load page open (nothing is sampled otherwise).")
    app_uid: int = Field(
        60000, ge=1000, le=2**31 - 1,
        description="The uid instant apps' containers run as (an account of nobody's; keep "
        "it outside the range of users' uids).")
    app_starts_at_once: int = Field(
        4, ge=1, le=100,
        description="Instant-app spares started at once, across all apps (each start "
        "takes CPU until its app answers).")
    app_pool_interval: float = Field(
        2.0, gt=0, le=60,
        description="Seconds between the pools' rounds: culling idle or old claims, "
        "replacing old spares (claims themselves replenish at once).")
    app_replenish_quiet: float = Field(
        1.0, ge=0, le=30,
        description="Seconds without a claim before the spares a rush took are replaced "
        "(at most 5 times this after the rush began; at once when no spare is left): their "
        "starts would slow the rush's claims. 0: replace at once.")
    app_claim_burst: int = Field(
        200, ge=1, le=100_000,
        description="Claims one client address may make at once before app_claim_rate "
        "applies (a class behind one NAT shares an address).")
    app_claim_rate: float = Field(
        30.0, gt=0, le=100_000,
        description="Claims per minute one client address may make after its burst.")
    session_max_age: int = Field(
        14 * 24 * 3600, description="Seconds a browser login stays valid."
    )
    password_min_length: int = Field(
        DEFAULT_MIN_LENGTH, ge=LOWEST_MIN_LENGTH, le=MAX_LENGTH,
        description="The fewest characters of a password people choose for a local account "
        f"(at least {LOWEST_MIN_LENGTH}). Such passwords are also refused when they contain "
        "the user name, are a repeated character or a run (abcdef, 123456, qwerty), or are one "
        "of the most common passwords. Generated one-time passwords are not affected.",
    )
    cli_token_max_age: int = Field(
        90 * 24 * 3600, description="Seconds a `labspace login` on a laptop stays valid."
    )
    cookie_secure: bool | None = Field(
        None,
        description="Mark cookies Secure. Default: true when public_url starts with https.",
    )
    secret_key: str | None = Field(
        None,
        description="Key that signs CSRF tokens. Default: generated once and kept in "
        "data_dir/secret_key.",
    )
    metrics_token: str = Field(
        "", description="A bearer token Prometheus sends to scrape /hub/metrics (`Authorization: "
        "Bearer <token>`; at least 32 characters, e.g. `openssl rand -hex 32`). Empty: only "
        "administrators (their session or API token) may read the metrics. See docs/admin.md, "
        "\"Metrics\".")
    default_image_tag: str = Field(
        "labspace/jupyterlab:latest", description="Image of the built-in JupyterLab template."
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
    audit_retention_days: int = Field(
        365, ge=0, description="Days the audit log keeps its entries (older ones are deleted "
        "once a day); 0 keeps them forever.")
    auth: Literal["local", "ldap"] = Field(
        "local", description="Login method: local accounts only, or LDAP first (FreeIPA, "
        "Active Directory, OpenLDAP) and then local accounts (the admins labspace made).")
    ldap_url: str = Field("", description="auth = \"ldap\": the directory, ldap://host:389 "
                          "(with ldap_start_tls) or ldaps://host:636.")
    ldap_preset: Literal["freeipa", "openldap", "active-directory"] = Field(
        "openldap", description="Where users and groups are and how they are found; the "
        "ldap_user_* and ldap_group_* settings override each part.")
    ldap_base_dn: str = Field(
        "", description="The directory's base, e.g. dc=lab,dc=example,dc=org.")
    ldap_bind_dn: str = Field("", description="The account that searches for users (empty: "
                              "anonymous search), e.g. uid=labspace,cn=sysaccounts,...")
    ldap_bind_password: str = Field("", description="Its password.")
    ldap_user_base: str = Field("", description="Where users are (default: the preset's, "
                                "below ldap_base_dn).")
    ldap_user_filter: str = Field("", description="How a user is found; {username} is the "
                                  "escaped login name (default: the preset's).")
    ldap_group_base: str = Field("", description="Where groups are (default: the preset's).")
    ldap_group_filter: str = Field("", description="A user's groups; {dn} and {username} are "
                                   "escaped (default: the preset's).")
    ldap_start_tls: bool = Field(False, description="Upgrade an ldap:// connection with "
                                 "StartTLS (the certificate is checked either way).")
    ldap_ca_file: Path | None = Field(None, description="CA certificates (PEM) the "
                                      "directory's certificate is checked against (default: "
                                      "the system's).")
    ldap_allowed_groups: list[str] = Field(default_factory=list, description="Only members "
                                           "of these groups may log in (empty: everyone the "
                                           "user filter finds).")
    ldap_admin_groups: list[str] = Field(default_factory=list, description="Members of these "
                                         "groups are labspace administrators (checked at each "
                                         "login).")
    ldap_sync_interval: float = Field(300.0, description="Seconds between checks that each "
                                      "directory account is still in the directory and its "
                                      "allowed groups; one that is not is disabled (0: "
                                      "never).")
    oidc_issuer: str = Field("", description="Single sign-on with an OpenID Connect provider "
                             "as well (a button on the login page), e.g. Keycloak's "
                             "https://sso.example.org/realms/lab. Empty: off.")
    oidc_preset: Literal["generic", "keycloak"] = Field(
        "generic", description="keycloak: groups arrive as paths (\"/phd\"), the leading "
        "slash is dropped.")
    oidc_client_id: str = Field("", description="labspace's client id at the provider; its "
                                "redirect URI is public_url + /hub/oidc/callback.")
    oidc_client_secret: str = Field("", description="Its secret (a confidential client; PKCE "
                                    "is used as well).")
    oidc_scopes: list[str] = Field(default_factory=list, description="Scopes asked for "
                                   "(default: openid, profile, email).")
    oidc_username_claim: str = Field("preferred_username", description="The claim that is "
                                     "the labspace user name.")
    oidc_groups_claim: str = Field("groups", description="The claim that lists the groups.")
    oidc_uid_claim: str = Field("", description="A claim with the numeric uid (FreeIPA's "
                                "uidNumber through a Keycloak mapper); empty: allocated.")
    oidc_gid_claim: str = Field("", description="A claim with the numeric primary gid.")
    oidc_ca_file: Path | None = Field(None, description="CA certificates (PEM) the provider's "
                                      "certificate is checked against (default: the "
                                      "system's).")
    oidc_allowed_groups: list[str] = Field(default_factory=list, description="Only members "
                                           "of these groups may log in (empty: everyone the "
                                           "provider logs in).")
    oidc_admin_groups: list[str] = Field(default_factory=list, description="Members of these "
                                         "groups are labspace administrators (checked at each "
                                         "login).")
    oidc_name: str = Field("single sign-on", description="The button says \"Log in with "
                           "...\": the provider's name for your users (e.g. \"Lab "
                           "account\").")

    @field_validator("public_port", "hub_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("a port is a number from 0 to 65535")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: str) -> str:
        # Prometheus sends it on every scrape from another machine: it must not be guessable.
        if value and len(value) < 32:
            raise ValueError("use at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as error:
                raise ValueError(f"not an address or network: {entry!r}") from error
        return value

    @field_validator("apps_domain")
    @classmethod
    def _domain_name(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().lower().rstrip(".")
        if not _DOMAIN_RE.fullmatch(value):
            raise ValueError(f"not a DNS domain name: {value!r} (e.g. apps.lab.example.org)")
        return value

    @model_validator(mode="after")
    def _access_names_profiles(self) -> Settings:
        for name in self.profiles:
            if not re.fullmatch(NAME_PATTERN, name):
                raise ValueError(f"profile name {name!r}: use lowercase letters, digits, '-'")
        for group, rule in self.access.items():
            unknown = sorted(set(rule.profiles or ()) - set(self.profiles))
            if unknown:
                raise ValueError(f"access rule {group!r} names unknown profiles: "
                                 f"{', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError("oidc_issuer needs oidc_client_id and oidc_client_secret")
        if self.oidc_issuer and urlsplit(self.oidc_issuer).scheme not in ("https", "http"):
            raise ValueError(f"oidc_issuer is not a URL: {self.oidc_issuer!r}")
        return self

    @model_validator(mode="after")
    def _apps_need_secure_cookies(self) -> Settings:
        if self.apps_domain and not self.secure_cookies:
            raise ValueError(
                "apps_domain needs Secure cookies: serve labspace over HTTPS (public_url = "
                '"https://...") or, on one machine, use public_url = "http://localhost:PORT"'
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # Derived values: computed, never stored, so they cannot disagree with their inputs.

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'labspace.db'}"

    @property
    def homes(self) -> Path:
        return self.homes_dir or self.data_dir / "homes"

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        import socket

        return f"http://{socket.gethostname()}:{self.public_port}"

    @property
    def control_socket(self) -> Path:
        """The proxy's control socket (the hub tells it there about revoked credentials)."""
        return self.data_dir / "proxy.sock"

    @property
    def hub_address(self) -> str:
        return f"http://{self.hub_host}:{self.hub_port}"

    @property
    def secure_cookies(self) -> bool:
        """Default: over HTTPS, and for a localhost URL with apps_domain (browsers keep Secure
        cookies for localhost, which is what lets the hub's cookie take the __Host- prefix)."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        if not self.public_url:
            return False
        parts = urlsplit(self.public_url)
        if parts.scheme == "https":
            return True
        return bool(self.apps_domain) and _is_local_host(parts.hostname or "")

    @property
    def session_cookie(self) -> str:
        """The hub's session cookie. With Secure cookies it takes the ``__Host-`` prefix, which
        browsers accept only from the hub's own host: no workspace host can set or shadow it."""
        return SECURE_SESSION_COOKIE if self.secure_cookies else SESSION_COOKIE

    def signing_key(self) -> str:
        """The signing key: configured, or generated once into the data dir (0600). The hub
        and the proxy may both start on a fresh data dir: the key appears atomically (a
        private temporary file linked into place), and the loser of the race reads it."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.data_dir, prefix=".secret_key.")
            try:
                with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
                    handle.write(secrets.token_urlsafe(48))
                with contextlib.suppress(FileExistsError):
                    os.link(temporary, path)
            finally:
                os.unlink(temporary)
        return path.read_text().strip()


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; raises pydantic.ValidationError with every bad field named."""
    return Settings(**overrides)


def reference_markdown() -> str:
    """The configuration reference, generated from the model (used by docs/admin.md)."""
    lines = [
        "| option (TOML key) | environment variable | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True, validated_data={})
        shown = "(derived)" if default is None else f"`{default}`"
        lines.append(
            f"| `{name}` | `LABSPACE_{name.upper()}` | {shown} | {field.description or ''} |"
        )
    return "\n".join(lines)
