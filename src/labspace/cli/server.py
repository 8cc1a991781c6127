"""Commands that run or prepare labspace's own processes: init, hub, proxy, serve."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from labspace.config import Settings, load_settings
from labspace.errors import InvalidInput


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ValidationError as error:
        raise InvalidInput(f"bad configuration: {error}") from error


def init(
    admin: Annotated[str, typer.Option(help="Name of the first administrator.")] = "admin",
) -> None:
    """Create the data directory and database, the built-in templates and the first admin.

    Idempotent: run again, it changes nothing that is already right. Prints the admin's
    one-time password only when the admin is created.
    """
    from labspace.hub import bootstrap_admin, open_hub

    settings = settings_or_exit()

    async def run() -> None:
        hub = await open_hub(settings)
        try:
            result = await bootstrap_admin(hub, admin)
        finally:
            await hub.close()
        if result.password:
            typer.echo(f"admin user:     {result.admin}")
            typer.echo(f"admin password: {result.password}   (shown once: change it after login)")
        typer.echo(f"CLI token file: {result.token_file}")

    asyncio.run(run())


def hub() -> None:
    """Run the hub (UI and API) in the foreground, on the internal address."""
    settings_or_exit()  # a bad configuration is reported here, with the CLI's error format
    _exec_module("labspace.web")


def proxy() -> None:
    """Run the public proxy in the foreground (keeps serving while the hub restarts)."""
    settings_or_exit()
    _exec_module("labspace.proxy")


def _exec_module(module: str) -> None:
    # Replace this process: the long-running server then carries none of the CLI's imports.
    os.execv(sys.executable, [sys.executable, "-m", module])  # noqa: S606


def serve() -> None:
    """Run the proxy and the hub together, each as its own process.

    Restarting the hub keeps open sessions. Ctrl-C or SIGTERM stops both; workspaces keep
    running.
    """
    settings = settings_or_exit()
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "labspace.cli.main"]
    children = [
        _spawn([*command, "proxy"], logs / "proxy.log"),
        _spawn([*command, "hub"], logs / "hub.log"),
    ]
    typer.echo(f"labspace is running at {settings.url}/  (logs in {logs})")

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        # One died: a supervisor (systemd) restarts us; keep the other from lingering.
    finally:
        stop()
        for child in children:
            child.wait(timeout=15)
    raise typer.Exit(max((child.returncode or 0) for child in children) and 1)


def _spawn(command: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    handle = open(log_file, "ab")  # noqa: SIM115 - handed to the child for its lifetime
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=os.environ)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(hub)
    app.command()(proxy)
    app.command()(serve)
