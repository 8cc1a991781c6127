"""``labspace``: the entry point. Sub-commands live one file each in this package."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from labspace import __version__
from labspace.cli import (
    apps,
    audit,
    config,
    images,
    keys,
    nodes,
    ports,
    quotas,
    remote,
    server,
    ssh,
    templates,
    users,
    workshops,
    workspaces,
)
from labspace.errors import LabspaceError

app = typer.Typer(
    name="labspace",
    help="Self-hosted workspaces for research labs, classes and workshops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server.register(app)


app.add_typer(users.app, name="user", help="Add, list, disable and enable accounts.")
app.add_typer(workspaces.app, name="workspace", help="List, start, stop and delete workspaces.")
app.add_typer(workshops.app, name="workshop", help="Workshop accounts: create, print the "
              "credential sheet, reset, extend, delete.")
app.add_typer(apps.app, name="app", help="Instant apps: a link that gives each visitor a "
              "fresh container. Add, list, show, drain, refresh, delete.")
app.add_typer(templates.app, name="template", help="List, add and show workspace templates.")
app.add_typer(images.app, name="image", help="Build workspace images.")
app.add_typer(nodes.app, name="node", help="List the servers; drain or reactivate one.")
app.add_typer(config.app, name="config", help="Show the configuration and its reference.")
app.command("tunnel")(remote.tunnel)
app.command("port-forward")(remote.port_forward)
app.command("login")(ssh.login)
app.command("logout")(ssh.logout)
# Everything after the workspace is ssh's (options, then the command): `labspace ssh lab ls -l`.
app.command("ssh", context_settings={"allow_interspersed_args": False,
                                     "ignore_unknown_options": True})(ssh.ssh)
app.command("config-ssh")(ssh.config_ssh)
app.add_typer(keys.app, name="key", help="Add, list and remove your SSH public keys.")
app.add_typer(ports.app, name="port", help="List a workspace's ports; share one by link.")
app.add_typer(quotas.app, name="quota", help="List, set and unset the quotas of users and "
              "groups (CPUs, memory, GPUs, running workspaces at once).")
app.command("audit")(audit.audit)


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
