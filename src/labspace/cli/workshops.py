"""``labspace workshop``: attendee accounts for a class, their credential sheet, resets,
extensions and clean-up (the hub's /hub/api/workshops)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import Client, JsonOption, UrlOption, connect, print_json
from labspace.cli.confirm import confirm_by_name

app = typer.Typer(no_args_is_help=True, help="Create workshops, print their credential "
                  "sheets, reset attendees, extend and delete them.")
console = Console()
FORMATS = ("html", "pdf", "csv")


def _summary(workshop: dict[str, Any]) -> str:
    state = "ended: accounts disabled" if workshop["expired"] else "open"
    opens = (f"app {escape(workshop['app'])}" if workshop.get("app") else
             f"workspace {escape(workshop['template'] or 'of their choice')}")
    return (f"[bold]{escape(workshop['name'])}[/]: {workshop['seats']} attendees, ends "
            f"{workshop['expires_at']} ({state}), {opens}")


def _save(client: Client, name: str, kind: str, path: Path) -> Path:
    """Write a sheet where only its owner reads it: it holds every attendee's password."""
    body = client.request("GET", f"/workshops/{name}/sheet.{kind}").content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    return path


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Short name; accounts are NAME-01, NAME-02...")],
    users: Annotated[int, typer.Option("--users", min=1, max=1000,
                                       help="How many attendee accounts.")],
    expires: Annotated[str, typer.Option(help="When it ends: 2026-12-01 (the end of that "
                                         "day, UTC), an ISO time, or 8h, 3d, 2w from now.")],
    template: Annotated[str | None, typer.Option(help="The attendees' workspace: their login "
                                                 "link opens it, started.")] = None,
    app_: Annotated[str | None, typer.Option("--app", help="Or the instant app their login "
                                             "link opens (labspace app add).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the sheet (html, pdf) and the CSV "
                                             "into this folder (mode 0600).")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create the attendee accounts with readable passwords and one-click login links."""
    with connect(url) as client:
        with console.status(f"creating {users} accounts…"):
            workshop = client.post("/workshops", {"name": name, "seats": users,
                                                  "expires": expires, "template": template,
                                                  "app": app_})
        saved = []
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            saved = [_save(client, name, kind, out / f"{name}-credentials.{kind}")
                     for kind in FORMATS]
    if as_json:
        print_json(workshop)
        return
    console.print("created " + _summary(workshop))
    for path in saved:
        console.print(f"  wrote {escape(str(path))}")
    if not saved:
        console.print(f"print the cards: labspace workshop sheet {name} --format pdf "
                      f"--output {name}.pdf", highlight=False)


@app.command("list")
def list_(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """The workshops you manage (administrators: all)."""
    with connect(url) as client:
        workshops = client.get("/workshops")
    if as_json:
        print_json(workshops)
        return
    table = Table("workshop", "attendees", "template", "ends (UTC)", "state", "instructors")
    for w in workshops:
        table.add_row(escape(w["name"]), str(w["seats"]), escape(w["template"] or "-"),
                      w["expires_at"], "ended" if w["expired"] else "open",
                      escape(", ".join(w["instructors"])))
    console.print(table)


@app.command("show")
def show(name: str, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """A workshop and its attendees' accounts."""
    with connect(url) as client:
        workshop = client.get(f"/workshops/{name}")
        workshop["attendees"] = client.get(f"/workshops/{name}/attendees")
    if as_json:
        print_json(workshop)
        return
    console.print(_summary(workshop))
    console.print(escape(" ".join(workshop["attendees"])))


@app.command("sheet")
def sheet(
    name: str,
    format: Annotated[str, typer.Option("--format", help="html, pdf or csv.")] = "pdf",
    output: Annotated[Path | None, typer.Option(help="File to write (default: "
                                                "NAME-credentials.FORMAT).")] = None,
    url: UrlOption = None,
) -> None:
    """Write the credential sheet (one card per attendee, with the QR code of their login
    link) or the CSV of the credentials."""
    if format not in FORMATS:
        raise typer.BadParameter("use html, pdf or csv", param_hint="--format")
    with connect(url) as client:
        path = _save(client, name, format, output or Path(f"{name}-credentials.{format}"))
    console.print(f"wrote {escape(str(path))} (it holds passwords: hand it out, then delete "
                  "it)")


@app.command("reset")
def reset(name: str, user: Annotated[str, typer.Argument(help="The attendee's account.")],
          url: UrlOption = None, as_json: JsonOption = False) -> None:
    """A new password and login link for one attendee (lost card); their sessions end."""
    with connect(url) as client:
        card = client.post(f"/workshops/{name}/attendees/{user}/reset")
    if as_json:
        print_json(card)
        return
    console.print(f"[bold]{escape(card['user'])}[/]: password [bold]{escape(card['password'])}"
                  f"[/], login link {escape(card['login_url'])}", highlight=False)


@app.command("extend")
def extend(name: str,
           expires: Annotated[str, typer.Option(help="The new end (as for create).")],
           url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Move the end; an ended workshop's accounts are enabled again."""
    with connect(url) as client:
        workshop = client.post(f"/workshops/{name}/extend", {"expires": expires})
    if as_json:
        print_json(workshop)
        return
    console.print("extended " + _summary(workshop))


@app.command("instructor")
def instructor(name: str, user: Annotated[str, typer.Argument(help="Who may manage it too.")],
               url: UrlOption = None) -> None:
    """(Administrators) let another instructor manage this workshop."""
    with connect(url) as client:
        workshop = client.post(f"/workshops/{name}/instructors", {"name": user})
    console.print(f"{escape(name)}: instructors {escape(', '.join(workshop['instructors']))}")


@app.command("delete")
def delete(
    name: str,
    delete_homes: Annotated[bool, typer.Option(
        "--delete-homes", help="Delete the attendees' homes and their files too (else they "
        "are moved to <homes>/.deleted on the server).")] = False,
    confirm: Annotated[str, typer.Option(
        "--confirm", metavar="NAME", help="The workshop's name again, to delete without being "
        "asked (scripts).")] = "",
    url: UrlOption = None,
) -> None:
    """Delete the attendees' accounts, workspaces and tokens, then the workshop."""
    what = ("every attendee's account, workspaces and HOME" if delete_homes else
            "every attendee's account and workspaces (homes are kept)")
    confirm_by_name(name, confirm, what)
    with connect(url) as client, console.status(f"deleting {name}…"):
        client.delete(f"/workshops/{name}", delete_homes=str(delete_homes).lower(),
                      confirm=name)
    console.print(f"deleted workshop [bold]{escape(name)}[/]")
