"""``labspace workspace``: list, create, start, stop, delete workspaces and read their logs."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import (
    Client,
    JsonOption,
    UrlOption,
    WorkspaceRef,
    connect,
    print_json,
    split_workspace,
)
from labspace.errors import InvalidInput, LabspaceError, StartFailed

app = typer.Typer(no_args_is_help=True, help="List, start, stop and delete workspaces.")
console = Console()
errors = Console(stderr=True)

_STATE_STYLE = {
    "running": "green",
    "failed": "red",
    "stopped": "dim",
    "pending": "yellow",
    "starting": "yellow",
    "stopping": "yellow",
}



def _state(state: str, width: int = 0) -> str:
    style = _STATE_STYLE.get(state, "")
    shown = state.ljust(width)
    return f"[{style}]{shown}[/]" if style else shown


def _public_url(path: str) -> str:
    """The workspace's address for people (the public URL), best effort."""
    try:
        from labspace.config import load_settings

        return load_settings().url + path
    except Exception:  # a display nicety, never worth failing for
        return path


def _last_event_id(client: Client, owner: str, name: str) -> int:
    last = 0
    for event in client.events(owner, name, follow=False):
        last = max(last, int(event.get("id", 0)))
    return last


def _follow(client: Client, owner: str, name: str, after: int, quiet: bool) -> dict[str, Any]:
    """Show the workspace's progress until it settles; return its final record."""
    if quiet:
        for _event in client.events(owner, name, after=after):
            pass
    else:
        with console.status(f"starting {owner}/{name}…", spinner="dots") as status:
            for event in client.events(owner, name, after=after):
                at = str(event.get("at", ""))[11:19]
                state = str(event.get("state", ""))
                message = str(event.get("message", ""))
                console.print(f"  {at}  {_state(state, 8)}  {escape(message)}", highlight=False)
                status.update(f"{owner}/{name}: {state}: {message}")
    return dict(client.get(f"/workspaces/{owner}/{name}"))


def start_and_follow(client: Client, owner: str, name: str, *, quiet: bool) -> dict[str, Any]:
    """Start a workspace and follow its new progress events until it settles; its final
    record (``labspace workspace start``, and ``labspace ssh`` for a stopped workspace)."""
    after = _last_event_id(client, owner, name)
    client.post(f"/workspaces/{owner}/{name}/start")
    return _follow(client, owner, name, after, quiet)


def _finish_start(client: Client, record: dict[str, Any], as_json: bool) -> None:
    owner, name = record["owner"], record["name"]
    if record["state"] == "failed":
        try:
            logs = client.text(f"/workspaces/{owner}/{name}/logs", tail=20)
        except LabspaceError:  # logs are a help, not the error
            logs = ""
        if logs.strip() and not as_json:
            errors.print("[bold]last lines of the workspace's log:[/]")
            errors.print(logs.rstrip(), highlight=False, markup=False)
        if as_json:
            print_json(record)
        raise StartFailed(f"{owner}/{name} failed to start: {record['message']}", logs=logs)
    if as_json:
        print_json(record)
        return
    if record["state"] == "running":
        console.print(f"[green]✓[/] {owner}/{name} is running at {_public_url(record['url'])}",
                      highlight=False)
    else:
        console.print(f"{owner}/{name} is {_state(record['state'])}: {escape(record['message'])}")


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Everyone's workspaces (admins).")] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="Only this user's workspaces (admins).")
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List workspaces: yours, or with --all / --user everyone's or one user's."""
    with connect(url) as client:
        if user is None:
            records = client.get("/workspaces", all=str(all_).lower())
        elif user == client.me():
            records = client.get("/workspaces")
        else:
            records = [r for r in client.get("/workspaces", all="true") if r["owner"] == user]
    if as_json:
        print_json(records)
        return
    if not records:
        console.print("no workspaces")
        return
    table = Table("owner", "name", "template", "state", "message", "url")
    for record in records:
        table.add_row(record["owner"], record["name"], record["template"],
                      _state(record["state"]), escape(record["message"]), record["url"])
    console.print(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Workspace name: lowercase letters, digits, dashes.")],
    template: Annotated[str, typer.Option("--template", "-t", help="Template to create from.")],
    user: Annotated[
        str | None, typer.Option("--user", help="Owner (admins; default: you).")
    ] = None,
    no_start: Annotated[bool, typer.Option("--no-start", help="Create only; do not start.")
                        ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start, but return without waiting for it.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a workspace from a template and (unless --no-start) start it, showing progress."""
    from labspace.names import validate_name

    validate_name(name, kind="workspace name")
    body: dict[str, Any] = {"name": name, "template": template, "start": not no_start}
    if user is not None:
        body["owner"] = user
    with connect(url) as client:
        record = client.post("/workspaces", body)
        if no_start or no_wait:
            if as_json:
                print_json(record)
            else:
                console.print(f"created {record['owner']}/{record['name']} "
                              f"({_state(record['state'])})")
            return
        if not as_json:
            console.print(f"created {record['owner']}/{record['name']} from {template}")
        final = _follow(client, record["owner"], record["name"], 0, as_json)
        _finish_start(client, final, as_json)


@app.command("start")
def start(
    workspace: WorkspaceRef,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return at once instead of following progress.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a workspace and show its progress until it is running (or failed)."""
    with connect(url) as client:
        owner, name = split_workspace(workspace, client)
        if no_wait:
            record = client.post(f"/workspaces/{owner}/{name}/start")
            if as_json:
                print_json(record)
            else:
                console.print(f"{owner}/{name} is {_state(record['state'])}")
            return
        _finish_start(client, start_and_follow(client, owner, name, quiet=as_json), as_json)


@app.command("stop")
def stop(workspace: WorkspaceRef, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Stop a workspace (waits until its container has stopped; files in the home stay)."""
    with connect(url) as client:
        owner, name = split_workspace(workspace, client)
        with console.status(f"stopping {owner}/{name}…"):
            record = client.post(f"/workspaces/{owner}/{name}/stop")
    if as_json:
        print_json(record)
        return
    console.print(f"{owner}/{name} is {_state(record['state'])}")


@app.command("delete")
def delete(
    workspace: WorkspaceRef,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
) -> None:
    """Delete a workspace: its container goes; the owner's home (their files) is kept."""
    with connect(url) as client:
        owner, name = split_workspace(workspace, client)
        client.get(f"/workspaces/{owner}/{name}")  # a clear "not found" before asking
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    f"refusing to delete {owner}/{name} without confirmation: "
                    "pass --yes (no terminal to ask on)"
                )
            if not typer.confirm(f"Delete workspace {owner}/{name}? (the home is kept)"):
                raise typer.Exit(1)
        with console.status(f"deleting {owner}/{name}…"):
            client.delete(f"/workspaces/{owner}/{name}")
    console.print(f"deleted {owner}/{name}")


@app.command("logs")
def logs(
    workspace: WorkspaceRef,
    tail: Annotated[int, typer.Option(help="Number of lines from the end (1-5000).",
                                      min=1, max=5000)] = 100,
    url: UrlOption = None,
) -> None:
    """Print the last lines of a workspace container's output."""
    with connect(url) as client:
        owner, name = split_workspace(workspace, client)
        text = client.text(f"/workspaces/{owner}/{name}/logs", tail=tail)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
