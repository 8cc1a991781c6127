"""``labspace key``: the SSH public keys that log you in to your workspaces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import JsonOption, UrlOption, connect, print_json
from labspace.errors import InvalidInput

app = typer.Typer(no_args_is_help=True, help="Add, list and remove your SSH public keys.")
console = Console()


def _default_key() -> Path:
    for name in ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"):
        path = Path.home() / ".ssh" / name
        if path.is_file():
            return path
    return Path.home() / ".ssh" / "id_ed25519.pub"


@app.command("add")
def add(
    file: Annotated[Path | None, typer.Argument(
        help="A public key file (default: ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub); "
             "- reads standard input.")] = None,
    name: Annotated[str, typer.Option(help="Default: the key's comment.")] = "",
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a public key: it works in your running workspaces at once."""
    path = file or _default_key()
    if str(path) == "-":
        text = typer.get_text_stream("stdin").read()
    else:
        if path.suffix != ".pub" and path.with_suffix(".pub").is_file():
            raise InvalidInput(f"{path} looks like a private key; give {path}.pub")
        try:
            text = path.expanduser().read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with connect(url) as client:
        key = client.post("/keys", {"public_key": text, "name": name})
    if as_json:
        print_json(key)
        return
    console.print(f"added {key['id']}: {escape(key['name'])} {key['fingerprint']}",
                  highlight=False)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Everyone's (administrators).")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your keys (fingerprints as ssh-keygen -l shows them)."""
    with connect(url) as client:
        keys = client.get("/keys", all=str(all_).lower())
    if as_json:
        print_json(keys)
        return
    table = Table("id", *(["owner"] if all_ else []), "name", "type", "fingerprint", "added")
    for key in keys:
        table.add_row(str(key["id"]), *([key["owner"]] if all_ else []), escape(key["name"]),
                      key["type"], key["fingerprint"], key["created_at"][:16].replace("T", " "))
    console.print(table)


@app.command("remove")
def remove(
    key_id: Annotated[int, typer.Argument(help="The key's id (labspace key list).",
                                          metavar="ID")],
    url: UrlOption = None,
) -> None:
    """Remove a key: it stops working at once, in running workspaces too."""
    with connect(url) as client:
        client.delete(f"/keys/{key_id}")
    console.print(f"removed key {key_id}")
