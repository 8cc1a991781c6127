"""``labspace audit``: the audit log (administrators), newest first: a table, or JSON lines
with --json (the API's /hub/api/audit.jsonl, as is)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import UrlOption, connect

console = Console()
TABLE_LIMIT = 50

SinceOption = Annotated[str, typer.Option(
    "--since", help="From: an ISO date/time (2024-05-01, 2024-05-01T12:00Z) or 30m, 2h, 7d, "
    "4w back from now.")]
UntilOption = Annotated[str, typer.Option("--until", help="Before: the same forms.")]
UserOption = Annotated[str, typer.Option(
    "--user", help="Entries by this user or about their account or workspaces.")]
ActionOption = Annotated[str, typer.Option(
    "--action", help="An action or its prefix: login (login.ok, login.failed), user, "
    "workspace.start...")]
LimitOption = Annotated[int | None, typer.Option(
    "--limit", min=1, help=f"At most this many entries (default: {TABLE_LIMIT} in the "
    "table, all with --json).")]
LinesOption = Annotated[bool, typer.Option(
    "--json", help="Print JSON lines, one entry a line (for scripts and archives).")]


def audit(
    since: SinceOption = "",
    until: UntilOption = "",
    user: UserOption = "",
    action: ActionOption = "",
    limit: LimitOption = None,
    as_json: LinesOption = False,
    url: UrlOption = None,
) -> None:
    """Show the audit log: logins, account changes, workspaces, shares, keys, tokens and
    admin actions, with who, what, when and from where (administrators only).

    Examples: `labspace audit --since 7d --user alice`, `labspace audit --action login.failed`,
    `labspace audit --since 2024-01-01 --json > audit.jsonl`."""
    params: dict[str, Any] = {key: value for key, value in (
        ("since", since), ("until", until), ("user", user), ("action", action)) if value}
    with connect(url) as client:
        if as_json:
            if limit is not None:
                params["limit"] = limit
            sys.stdout.write(client.text("/audit.jsonl", **params))
            sys.stdout.flush()
            return
        entries = client.get("/audit", **params, limit=limit or TABLE_LIMIT)
    _table(entries)


def _table(entries: list[dict[str, Any]]) -> None:
    if not entries:
        console.print("no entries")
        return
    table = Table("when (UTC)", "who", "action", "target", "from", "detail")
    for entry in entries:
        action = escape(entry["action"])
        detail = ", ".join(f"{key}={value}" for key, value in entry["detail"].items())
        table.add_row(entry["at"][:19].replace("T", " "), escape(entry["actor"] or "-"),
                      action if entry["ok"] else f"[red]{action} (failed)[/]",
                      escape(entry["target"]), escape(entry["address"]), escape(detail))
    console.print(table)
