"""``labspace tunnel`` and ``labspace port-forward``: TCP into a workspace over HTTPS.

Both open WebSocket tunnels on the public address (labspace/proxy/tunnel.py), as the user of
LABSPACE_TOKEN, into a workspace of that user. They need only the client side of labspace
(labspace.remote), so they run on a laptop.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from labspace.cli.client import UrlOption, WorkspaceRef, connect, public_url, split_workspace
from labspace.errors import InvalidInput, RuntimeFailure
from labspace.remote.tunnel import Endpoint, TunnelRefused, forward, stdio


def _endpoint(ref: str, url: str | None) -> Endpoint:
    """The public address (``--url``, LABSPACE_URL, this computer's login, else this
    server's public_url), the token and the workspace."""
    public = public_url(url)
    client = connect(public)
    owner, name = split_workspace(ref, client)
    return Endpoint(public, client.token, owner, name)


def parse_mapping(text: str) -> tuple[int, int]:
    """"8080:8888" -> (8080, 8888); "9000" -> (9000, 9000)."""
    local, _, remote = text.rpartition(":") if ":" in text else (text, "", text)
    try:
        pair = (int(local), int(remote))
    except ValueError:
        raise InvalidInput(f"not a port mapping: {text!r} (use LOCAL:REMOTE or PORT)") from None
    if not (0 <= pair[0] <= 65535 and 1 <= pair[1] <= 65535):
        raise InvalidInput(f"port out of range in {text!r}")
    return pair


def tunnel(
    ref: WorkspaceRef,
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535,
                                      help="The workspace's port (22: its SSH server).")] = 22,
    url: UrlOption = None,
) -> None:
    """Carry standard input and output to PORT of a workspace, for ssh's ProxyCommand:
    ssh -o ProxyCommand='labspace tunnel lab' user@lab."""
    endpoint = _endpoint(ref, url)
    try:
        code = asyncio.run(stdio(endpoint, port))
    except TunnelRefused as exc:
        raise RuntimeFailure(str(exc)) from exc
    raise typer.Exit(code)


def port_forward(
    ref: WorkspaceRef,
    mappings: Annotated[list[str], typer.Argument(
        help="LOCAL:REMOTE (or PORT for both); LOCAL 0 picks a free port.",
        metavar="LOCAL:REMOTE...")],
    url: UrlOption = None,
) -> None:
    """Forward local ports to ports of a workspace (any TCP, not only HTTP), until Ctrl-C:
    labspace port-forward lab 8080:8888 5432."""
    pairs = [parse_mapping(m) for m in mappings]
    endpoint = _endpoint(ref, url)

    def ready(bound: list[tuple[int, int]]) -> None:
        for local, remote in bound:
            print(f"127.0.0.1:{local} -> {endpoint.owner}/{endpoint.workspace}:{remote}",
                  flush=True)

    try:
        asyncio.run(forward(endpoint, pairs, ready))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
