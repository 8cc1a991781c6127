"""``labspace port``: the ports a workspace listens on, and sharing one by its link."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import (
    JsonOption,
    UrlOption,
    WorkspaceRef,
    connect,
    print_json,
    split_workspace,
)
from labspace.errors import InvalidInput

app = typer.Typer(no_args_is_help=True,
                  help="List a workspace's ports; share one by link (private, authenticated, "
                       "public).")
console = Console()


@app.command("list")
def list_(workspace: WorkspaceRef, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """The ports the workspace listens on (found, not typed in) and how each is shared."""
    with connect(url) as client:
        owner, name = split_workspace(workspace, client)
        found = client.get(f"/workspaces/{owner}/{name}/ports")
    if as_json:
        print_json(found)
        return
    if found["detail"]:
        console.print(f"[dim]{escape(found['detail'])}[/dim]")
    table = Table("port", "shared with", "address", "note")
    for port in found["ports"]:
        listening = "" if port["listening"] else " (not listening)"
        table.add_row(f"{port['port']}{listening}", port["level"], port["url"] or "",
                      escape(port["note"]))
    console.print(table)
    console.print(f"[dim]this workspace's template allows sharing up to: "
                  f"{found['max_level']}[/dim]")


@app.command("share")
def share(
    workspace: WorkspaceRef,
    port: Annotated[int, typer.Argument(help="The port, e.g. 8050.", min=1, max=65535)],
    public: Annotated[bool, typer.Option("--public", help="Anyone with the link.")] = False,
    authenticated: Annotated[bool, typer.Option(
        "--authenticated", help="Anyone logged in to labspace.")] = False,
    private: Annotated[bool, typer.Option(
        "--private", help="You only (stops sharing; open connections of others end).")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Share a port by its own link, or make it private again; takes effect at once."""
    chosen = [level for level, on in (("public", public), ("authenticated", authenticated),
                                      ("private", private)) if on]
    if len(chosen) != 1:
        raise InvalidInput("give exactly one of --public, --authenticated or --private")
    with connect(url) as client:
        owner, name = split_workspace(workspace, client)
        shared = client.put(f"/workspaces/{owner}/{name}/ports/{port}", {"level": chosen[0]})
    if as_json:
        print_json(shared)
        return
    where = f": {shared['url']}" if shared["url"] and chosen[0] != "private" else ""
    console.print(f"port {port} of {owner}/{name} is {chosen[0]}{where}", highlight=False)
    if shared["note"]:
        console.print(f"[yellow]note:[/yellow] {escape(shared['note'])}")
