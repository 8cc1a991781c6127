"""``labspace node``: the servers workspaces run on; drain one before maintenance."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import JsonOption, UrlOption, connect, print_json

app = typer.Typer(no_args_is_help=True, help="List the servers; drain or reactivate one.")
console = Console()

GIB = 1024**3


def _use(node: dict[str, Any]) -> tuple[str, str]:
    cpus = f"{node['reserved_cpus']:g} / {node['cpus']:g}"
    memory = f"{node['reserved_memory_bytes'] / GIB:.1f} / {node['memory_bytes'] / GIB:.1f} GiB"
    return cpus, memory


@app.command("list")
def list_(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Every server with its CPUs and memory (reserved by workspaces / total), labels, state
    and the workspaces running there (administrators only)."""
    with connect(url) as client:
        nodes = client.get("/nodes")
    if as_json:
        print_json(nodes)
        return
    table = Table("node", "role", "state", "CPUs", "memory", "labels", "workspaces")
    for node in nodes:
        state = node["state"] if node["availability"] == "active" else (
            f"{node['state']}, [yellow]{node['availability']}[/]")
        cpus, memory = _use(node)
        labels = ", ".join(f"{k}={v}" for k, v in sorted(node["labels"].items())) or "-"
        table.add_row(escape(node["hostname"]), node["role"], state, cpus, memory,
                      escape(labels), escape(", ".join(node["workspaces"])) or "-")
    console.print(table)


def _set(node: str, availability: str, url: str | None, as_json: bool) -> dict[str, Any]:
    with connect(url) as client:
        changed: dict[str, Any] = client.post(f"/nodes/{node}/{availability}")
    if as_json:
        print_json(changed)
    return changed


NodeArgument = Annotated[str, typer.Argument(help="The node's hostname (see `node list`).")]


@app.command("drain")
def drain(node: NodeArgument, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Place no new workspaces on NODE. Running ones stay until stopped; this lists them: a
    stop and a start moves each to another server, with its home."""
    changed = _set(node, "drain", url, as_json)
    if as_json:
        return
    console.print(f"{escape(changed['hostname'])} is drained: no new workspaces go there.")
    if changed["workspaces"]:
        console.print("Still running there (stop and start each to move it):")
        for ref in changed["workspaces"]:
            console.print(f"  labspace workspace stop {escape(ref)} && "
                          f"labspace workspace start {escape(ref)}", highlight=False)


@app.command("activate")
def activate(node: NodeArgument, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Let NODE take new workspaces again (undoes `node drain`)."""
    changed = _set(node, "active", url, as_json)
    if not as_json:
        console.print(f"{escape(changed['hostname'])} takes new workspaces again.")
