"""``labspace template``: list, show and add workspace templates."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labspace.cli.client import JsonOption, UrlOption, connect, print_json
from labspace.errors import Conflict, InvalidInput
from labspace.templates import TemplateSpec

app = typer.Typer(no_args_is_help=True, help="List, add and show workspace templates.")
console = Console()


def _limits(spec: dict[str, Any]) -> str:
    limits = spec.get("limits") or {}
    parts = [f"{key} {value}" for key, value in limits.items() if value is not None]
    return ", ".join(parts) or "-"


# One workspace may take at most this share of the host's memory before `template add` warns.
MEMORY_SHARE_WARNING = 0.75


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"


def host_limit_warnings(spec: TemplateSpec, cores: int, memory: int) -> list[str]:
    """Limits that let one workspace take the whole host (``cores`` CPUs, ``memory`` bytes):
    a classroom's workspaces share it, so one busy student would starve everyone else."""
    warnings = []
    cpus, wanted = spec.limits.cpus, spec.limits.memory_bytes
    if cpus is None:
        warnings.append(f"template {spec.name} sets no CPU limit: one workspace can use all "
                        f"{cores} cores of this host (set [limits] cpus)")
    elif cpus >= cores:
        warnings.append(f"template {spec.name} lets one workspace use {cpus:g} CPUs, and this "
                        f"host has {cores} cores: one workspace can take them all")
    if wanted is None:
        warnings.append(f"template {spec.name} sets no memory limit: one workspace can take "
                        f"all {_gib(memory)} of this host's memory (set [limits] memory)")
    elif wanted > MEMORY_SHARE_WARNING * memory:
        warnings.append(f"template {spec.name} lets one workspace use {_gib(wanted)} of "
                        f"memory, more than {MEMORY_SHARE_WARNING:.0%} of this host's "
                        f"{_gib(memory)}")
    return warnings


def load_template_file(path: Path) -> dict[str, Any]:
    """Read a template from TOML or JSON and validate it here, for a clear error early."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise InvalidInput(f"{path}: a template file ends in .toml or .json")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        data: Any = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        kind = "TOML" if suffix == ".toml" else "JSON"
        raise InvalidInput(f"{path}: not valid {kind}: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: a template is a table of keys (name, image, app, ...)")
    from pydantic import ValidationError

    try:
        TemplateSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidInput(f"{path}: invalid template: {problems}") from None
    return data


@app.command("list")
def list_(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List the templates workspaces can be created from."""
    with connect(url) as client:
        specs = client.get("/templates")
    if as_json:
        print_json(specs)
        return
    table = Table("name", "display name")
    table.add_column("image", no_wrap=True)
    table.add_column("limits")
    table.add_column("description", ratio=1)
    for spec in specs:
        table.add_row(spec["name"], escape(spec["display_name"]), escape(spec["image"]),
                      _limits(spec), escape(spec.get("description", "")))
    console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The template's name.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one template in full."""
    with connect(url) as client:
        spec = client.get(f"/templates/{name}")
    if as_json:
        print_json(spec)
        return
    table = Table(show_header=False, title=f"template {spec['name']}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    app_spec = spec.get("app") or {}
    rows: list[tuple[str, str]] = [
        ("display name", spec["display_name"]),
        ("description", spec.get("description", "")),
        ("image", spec["image"]),
        ("command", " ".join(app_spec.get("command", []))),
        ("port", str(app_spec.get("port", ""))),
        ("base url", str(app_spec.get("base_url", ""))),
        ("health path", str(app_spec.get("health_path", ""))),
        ("limits", _limits(spec)),
        ("sudo", "yes" if spec.get("sudo") else "no"),
        ("workspaces", "yes" if spec.get("workspaces", True) else "no (instant apps only)"),
    ]
    for key, value in (spec.get("env") or {}).items():
        rows.append((f"env {key}", value))
    for mount in spec.get("mounts") or []:
        mode = "ro" if mount.get("read_only", True) else "rw"
        rows.append(("mount", f"{mount['source']} -> {mount['target']} ({mode})"))
    for key, value in rows:
        table.add_row(escape(key), escape(value))
    console.print(table, highlight=False)


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="Template file (.toml or .json).",
                                         metavar="FILE")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a template of the same name.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a template from a TOML or JSON file (checked here first, then sent to the hub)."""
    data = load_template_file(file)
    import psutil

    # Warnings, not errors: a lab may mean it (one workspace per machine), and only the
    # admin knows. They go to stderr so --json output stays clean.
    checked = TemplateSpec.model_validate(data)
    for warning in host_limit_warnings(checked, psutil.cpu_count() or 1,
                                       psutil.virtual_memory().total):
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    with connect(url) as client:
        try:
            spec = client.post("/templates", data, replace=str(replace).lower())
        except Conflict as error:
            message = error.message.replace("(use replace)", "").rstrip()
            raise Conflict(f"{message} (use --replace to replace it)") from None
    if as_json:
        print_json(spec)
        return
    verb = "replaced" if replace else "added"
    console.print(f"{verb} template [bold]{spec['name']}[/] ({spec['image']})")
