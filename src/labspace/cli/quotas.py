"""``labspace quota``: list, set and unset the quotas of users and groups (administrators;
``list --mine`` for everyone)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import JsonOption, UrlOption, connect, print_json
from labspace.errors import InvalidInput

app = typer.Typer(no_args_is_help=True, help="List, set and unset the quotas of users and "
                  "groups: the most CPUs, memory, GPUs and running workspaces at once.")
console = Console()

SCOPES = ("user", "group")
ScopeArg = Annotated[str, typer.Argument(help="user or group.", metavar="SCOPE")]
NameArg = Annotated[str, typer.Argument(help="The user's or the group's name (a group as the "
                                        "directory or the provider names it).")]


def _path(scope: str, name: str) -> str:
    if scope not in SCOPES:
        raise InvalidInput(f"unknown scope {scope!r}: use user or group")
    if not name or len(name) > 64:
        raise InvalidInput("the name must have 1-64 characters")
    return f"/quotas/{scope}/{quote(name, safe='')}"


def _gib(value: int) -> str:
    return f"{value / 1024**3:.3g}G"


def _cell(used: str, limit: object) -> str:
    return f"{used} / {'-' if limit is None else limit}"


def _table(quotas: list[dict[str, Any]]) -> Table:
    table = Table("quota", "cpus", "memory", "gpus", "running", "set by")
    for item in quotas:
        use = item["in_use"]
        memory = None if item["memory_bytes"] is None else _gib(item["memory_bytes"])
        table.add_row(
            f"{item['scope']} [bold]{escape(item['name'])}[/]",
            _cell(f"{use['cpus']:g}", None if item["cpus"] is None else f"{item['cpus']:g}"),
            _cell(_gib(use["memory_bytes"]), memory),
            _cell(str(use["gpus"]), item["gpus"]),
            _cell(str(use["running"]), item["running"]),
            f"{escape(item['updated_by'])}, {str(item['updated_at'])[:16].replace('T', ' ')}",
        )
    return table


@app.command("list")
def list_(
    mine: Annotated[bool, typer.Option("--mine", help="Only the quotas that bind you (any "
                                       "user may ask).")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the quotas with what is in use against each now (in use / limit)."""
    with connect(url) as client:
        quotas = client.get("/quotas/mine" if mine else "/quotas")
    if as_json:
        print_json(quotas)
        return
    if not quotas:
        console.print("no quotas" + (" bind you" if mine else ""))
        return
    console.print(_table(quotas))


@app.command("set")
def set_(
    scope: ScopeArg,
    name: NameArg,
    cpus: Annotated[float | None, typer.Option(min=0, help="CPUs at once.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory at once, e.g. 64g.")] = None,
    gpus: Annotated[int | None, typer.Option(min=0, help="GPUs at once (a shared GPU "
                                             "counts as one).")] = None,
    running: Annotated[int | None, typer.Option(min=0, help="Workspaces running at "
                                                "once.")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the quota of a user or a group, replacing the one it had (points left out have
    no limit). It applies from the next start: nothing running is stopped."""
    body = {key: value for key, value in {"cpus": cpus, "memory": memory, "gpus": gpus,
                                          "running": running}.items() if value is not None}
    if not body:
        raise InvalidInput("give at least one of --cpus, --memory, --gpus, --running "
                           "(to remove a quota: labspace quota unset)")
    path = _path(scope, name)
    with connect(url) as client:
        quota = client.put(path, body)
    if as_json:
        print_json(quota)
        return
    console.print(_table([quota]))


@app.command("unset")
def unset(scope: ScopeArg, name: NameArg, url: UrlOption = None) -> None:
    """Remove the quota of a user or a group."""
    path = _path(scope, name)
    with connect(url) as client:
        client.delete(path)
    console.print(f"removed the quota of {scope} [bold]{escape(name)}[/]")
