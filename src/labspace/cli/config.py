"""``labspace config``: the effective configuration, and the reference of every option."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from labspace.cli.client import JsonOption

app = typer.Typer(no_args_is_help=True, help="Show the configuration and its reference.")
console = Console()

MASK = "********"


def _mask_url(url: str) -> str:
    """A database URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return MASK if "@" in url else url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


# Settings whose values are credentials: never printed.
SECRET_SETTINGS = ("secret_key", "ldap_bind_password", "oidc_client_secret",
                   "metrics_token")


def effective_settings() -> dict[str, Any]:
    """Every setting (secrets masked) plus the values derived from them."""
    from labspace.cli.server import settings_or_exit
    from labspace.config import config_file

    settings = settings_or_exit()
    values: dict[str, Any] = json.loads(settings.model_dump_json())
    for secret in SECRET_SETTINGS:
        if getattr(settings, secret):
            values[secret] = MASK
    if settings.database_url:
        values["database_url"] = _mask_url(settings.database_url)
    path = config_file()
    derived = {
        "config_file": f"{path}" + ("" if path.is_file() else " (absent)"),
        "db_url": _mask_url(settings.db_url),
        "homes": str(settings.homes),
        "url": settings.url,
        "hub_address": settings.hub_address,
        "secure_cookies": settings.secure_cookies,
    }
    return {"settings": values, "derived": derived}


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Print the effective settings (file, environment, defaults), secrets masked."""
    effective = effective_settings()
    if as_json:
        typer.echo(json.dumps(effective, indent=2))
        return
    table = Table("option", "value", title="settings", title_justify="left")
    for key, value in effective["settings"].items():
        table.add_row(key, "(derived)" if value is None else str(value))
    console.print(table, highlight=False)
    derived = Table("derived", "value", title="derived values", title_justify="left")
    for key, value in effective["derived"].items():
        derived.add_row(key, str(value))
    console.print(derived, highlight=False)


@app.command("reference")
def reference() -> None:
    """Print the reference of every option as a Markdown table (for the docs)."""
    from labspace.config import reference_markdown

    typer.echo(reference_markdown())
