"""Settings: one TOML file plus ``LABSPACE_*`` environment variables, built at start-up.

Precedence, highest first: keyword arguments (tests), environment variables, the TOML file,
the defaults below. ``labspace config reference`` prints the documented reference generated
from this model, so the docs can never drift from the code.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("/etc/labspace/labspace.toml")


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
    public_host: str = Field("0.0.0.0", description="Address the public proxy listens on.")
    public_port: int = Field(8000, description="The one public port (proxy: UI, API, apps).")
    public_url: str | None = Field(
        None,
        description="URL people use to reach labspace, e.g. https://lab.example.org. "
        "Default: http://<host name>:<public_port>.",
    )
    hub_host: str = Field("127.0.0.1", description="Address the hub listens on (internal).")
    hub_port: int = Field(8081, description="Port the hub listens on (internal; the proxy "
                          "forwards /hub/ to it).")
    instance: str = Field(
        "default",
        description="Name of this labspace installation; labels every container it owns so "
        "several installations can share one Docker engine.",
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
    stop_timeout: float = Field(
        10.0, description="Seconds a workspace's processes get to exit before they are killed."
    )
    max_parallel_starts: int = Field(
        8,
        description="Container creations/starts sent to the engine at once; more requests "
        "queue (they are never refused).",
    )
    reconcile_interval: float = Field(
        30.0, description="Seconds between comparisons of the database with the engine."
    )
    session_max_age: int = Field(
        14 * 24 * 3600, description="Seconds a browser login stays valid."
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
    default_image_tag: str = Field(
        "labspace/jupyterlab:latest", description="Image of the built-in JupyterLab template."
    )
    log_level: str = Field("info", description="debug, info, warning or error.")

    @field_validator("public_port", "hub_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("a port is a number from 0 to 65535")
        return value

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
    def hub_address(self) -> str:
        return f"http://{self.hub_host}:{self.hub_port}"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return bool(self.public_url and self.public_url.startswith("https"))

    def signing_key(self) -> str:
        """The CSRF signing key: configured, or generated once into the data dir (0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
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
        default = field.default
        shown = "(derived)" if default is None else f"`{default}`"
        lines.append(
            f"| `{name}` | `LABSPACE_{name.upper()}` | {shown} | {field.description or ''} |"
        )
    return "\n".join(lines)
