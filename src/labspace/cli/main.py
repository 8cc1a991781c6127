"""``labspace``: the entry point. Sub-commands live one file each in this package."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from labspace import __version__
from labspace.cli import server
from labspace.errors import LabspaceError

app = typer.Typer(
    name="labspace",
    help="Self-hosted workspaces for research labs, classes and workshops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server.register(app)


def _register_optional() -> None:
    """Sub-apps that talk to a running hub through its API."""
    import importlib

    for module, name, help_text in (
        ("labspace.cli.users", "user", "Add, list, disable and enable accounts."),
        ("labspace.cli.workspaces", "workspace", "List, start, stop and delete workspaces."),
        ("labspace.cli.templates", "template", "List, add and show workspace templates."),
        ("labspace.cli.images", "image", "Build workspace images."),
        ("labspace.cli.config", "config", "Show the configuration and its reference."),
    ):
        try:
            sub = importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
            continue
        app.add_typer(sub.app, name=name, help=help_text)


_register_optional()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"labspace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Self-hosted workspaces for research labs, classes and workshops."""


def main() -> None:
    try:
        app()
    except LabspaceError as error:
        typer.secho(f"error: {error.message}", err=True, fg=typer.colors.RED)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
