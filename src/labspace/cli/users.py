"""``labspace user``: add, list, disable, enable and delete accounts, issue API tokens, and
check the directory's accounts."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import JsonOption, UrlOption, connect, print_json
from labspace.cli.confirm import confirm_by_name
from labspace.errors import InvalidInput
from labspace.identity.passwordpolicy import LOWEST_MIN_LENGTH, check_password
from labspace.names import validate_user_name

app = typer.Typer(no_args_is_help=True, help="Add, list, disable, enable and delete accounts.")
console = Console()



def _read_password(name: str) -> str:
    """One line of standard input, checked before anything is sent (the hub checks it again
    with its own password_min_length)."""
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_password(password, user_name=name, min_length=LOWEST_MIN_LENGTH)
    except InvalidInput as error:
        raise InvalidInput(f"{error.message} (read from standard input)") from None
    return password


def _show(user: dict[str, Any], verb: str) -> None:
    role = "administrator" if user.get("admin") else "user"
    console.print(f"{verb} {role} [bold]{user['name']}[/] (uid {user['uid']})")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name: lowercase letters, digits, dashes.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input "
                     "(else a one-time password is generated and printed)."),
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account. Without --password-stdin, prints a generated one-time password."""
    validate_user_name(name)
    body: dict[str, Any] = {"name": name, "admin": admin}
    if password_stdin:
        body["password"] = _read_password(name)
    with connect(url) as client:
        user = client.post("/users", body)
    if as_json:
        print_json(user)
        return
    _show(user, "created")
    if user.get("password"):
        console.print(f"one-time password: [bold]{escape(user['password'])}[/]   (shown once)",
                      highlight=False)


@app.command("list")
def list_(
    search: Annotated[str, typer.Option("--search", metavar="Q",
                                        help="Names containing Q.")] = "",
    group: Annotated[str, typer.Option(help="Members of this group.")] = "",
    role: Annotated[str, typer.Option(help="admin, instructor or member.")] = "",
    state: Annotated[str, typer.Option(help="enabled or disabled.")] = "",
    workshop: Annotated[str, typer.Option(help="Attendees of this workshop.")] = "",
    limit: Annotated[int | None, typer.Option(min=1, max=500,
                                              help="At most N (default: all).")] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip the first N.")] = 0,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the accounts, by name (administrators only)."""
    params: dict[str, Any] = {key: value for key, value in {
        "q": search, "group": group, "role": role, "state": state, "workshop": workshop,
        "limit": limit, "offset": offset}.items() if value}
    with connect(url) as client:
        response = client.request("GET", "/users", params=params or None)
    users = response.json()
    total = response.headers.get("x-total-count", str(len(users)))
    if as_json:
        print_json(users)
        return
    table = Table("name", "uid", "role", "from", "status", "created")
    for user in users:
        table.add_row(
            user["name"],
            str(user["uid"]),
            "admin" if user["admin"] else "user",
            user.get("source", "local"),
            "[red]disabled[/]" if user["disabled"] else "active",
            str(user["created_at"])[:19].replace("T", " "),
        )
    console.print(table)
    console.print(f"{len(users)} of {total}", highlight=False)


def _bulk(action: str, names: list[str], url: str | None, as_json: bool, done: str) -> None:
    """Several names: one request for all; each is reported, and any failure exits 1."""
    with connect(url) as client, console.status(f"{action} {len(names)} accounts…"):
        results = client.post("/users/bulk", {"action": action, "names": names})
    if as_json:
        print_json(results)
    else:
        for result in results:
            console.print(f"{done} [bold]{escape(result['name'])}[/]" if result["ok"] else
                          f"[red]{escape(result['name'])}: {escape(result['error'])}[/]")
    if not all(result["ok"] for result in results):
        raise typer.Exit(1)


@app.command("disable")
def disable(
    names: Annotated[list[str], typer.Argument(help="The users to disable.", metavar="NAME...")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Disable accounts: no more logins or tokens; their running workspaces stop.
    Their homes and workspaces are kept."""
    if len(names) > 1:
        _bulk("disable", names, url, as_json, "disabled")
        return
    name = names[0]
    with connect(url) as client, console.status(f"disabling {name}…"):
        user = client.post(f"/users/{name}/disable")
    if as_json:
        print_json(user)
        return
    console.print(f"disabled [bold]{name}[/] (their workspaces were stopped; homes are kept)")


@app.command("enable")
def enable(
    names: Annotated[list[str], typer.Argument(help="The users to enable again.",
                                               metavar="NAME...")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enable disabled accounts again."""
    if len(names) > 1:
        _bulk("enable", names, url, as_json, "enabled")
        return
    name = names[0]
    with connect(url) as client:
        user = client.post(f"/users/{name}/enable")
    if as_json:
        print_json(user)
        return
    console.print(f"enabled [bold]{name}[/]")


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The user to delete.")],
    delete_home: Annotated[bool, typer.Option(
        "--delete-home", help="Delete their home and every file in it (else it is moved to "
        "<homes>/.deleted on the server).")] = False,
    confirm: Annotated[str, typer.Option(
        "--confirm", metavar="NAME", help="The user's name again, to delete without being "
        "asked (scripts).")] = "",
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete an account: its sessions, tokens, SSH keys and workspaces end now; its uid is
    never given to anyone again."""
    confirm_by_name(name, confirm, "their account, workspaces and HOME with all its files"
                    if delete_home else "their account and workspaces (the home is kept)")
    with connect(url) as client, console.status(f"deleting {name}…"):
        result = client.delete(f"/users/{name}", delete_home=str(delete_home).lower(),
                               confirm=name)
    if as_json:
        print_json(result)
        return
    home = (f"their home was moved to {result['home_kept_at']}" if result["home_kept_at"]
            else "their home was deleted" if delete_home else "they had no home")
    console.print(f"deleted [bold]{name}[/] (uid {result['uid']} is retired); {home}")


@app.command("sync")
def sync(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Check now that every directory (LDAP) account is still in the directory and its
    allowed groups, and disable those that are not (the hub also does this on its own
    every ldap_sync_interval seconds)."""
    with connect(url) as client, console.status("asking the directory…"):
        result = client.post("/directory/sync")
    if as_json:
        print_json(result)
        return
    if result["held_back"]:
        console.print(f"[red]the directory no longer finds {len(result['gone'])} of "
                      f"{result['checked']} accounts: nobody was disabled[/] (a wrong base DN "
                      "or search account? see the hub's log)")
        raise typer.Exit(1)
    gone = ", ".join(result["gone"]) or "nobody"
    console.print(f"checked {result['checked']} directory accounts; disabled: {gone}")


@app.command("password")
def password(
    name: Annotated[str, typer.Argument(help="The user whose password is set.")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the new password from standard input "
                     "(else a one-time password is generated and printed)."),
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a user's password, or print a new one-time password (administrators only)."""
    body: dict[str, Any] = {}
    if password_stdin:
        body["password"] = _read_password(name)
    with connect(url) as client:
        result = client.post(f"/users/{name}/password", body)
    if as_json:
        print_json(result)
        return
    if result.get("password"):
        console.print(f"one-time password for [bold]{escape(name)}[/]: "
                      f"[bold]{escape(result['password'])}[/]   (shown once)", highlight=False)
    else:
        console.print(f"password of [bold]{escape(name)}[/] set")


@app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    note: Annotated[str, typer.Option(help="What the token is for.")] = "labspace CLI",
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue an API token for a user and print it (only this once)."""
    with connect(url) as client:
        issued = client.post(f"/users/{name}/tokens", {"note": note})
    if as_json:
        print_json(issued)
        return
    sys.stdout.write(issued["token"] + "\n")


def _group_entries(text: str) -> list[dict[str, Any]]:
    """'phd:5002,interns' -> [{"name": "phd", "gid": 5002}, {"name": "interns"}]."""
    entries: list[dict[str, Any]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, gid = item.partition(":")
        if gid and not gid.isdigit():
            raise InvalidInput(f"group {item!r}: the gid after ':' is a number")
        entries.append({"name": name, "gid": int(gid) if gid else None})
    return entries


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="The account.")],
    role: Annotated[str | None, typer.Option(help="member or instructor (instructors run "
                                             "workshops).")] = None,
    groups: Annotated[str | None, typer.Option(
        help="A local account's groups, e.g. 'phd:5002,interns' (NAME or NAME:GID; '' for "
        "none). They choose its access rules and group folders at the next start.")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an account's role or (local accounts) groups."""
    body: dict[str, Any] = {}
    if role is not None:
        body["role"] = role
    if groups is not None:
        body["groups"] = _group_entries(groups)
    if not body:
        raise InvalidInput("nothing to change: give --role and/or --groups")
    with connect(url) as client:
        user = client.request("PATCH", f"/users/{name}", json=body).json()
    if as_json:
        print_json(user)
        return
    console.print(f"[bold]{escape(user['name'])}[/]: role {user['role']}, groups "
                  f"{escape(', '.join(user['groups']) or '(none)')}")
