"""The fast start of ``labspace tunnel OWNER/NAME --url URL [--port N]``, the exact form that
``labspace config-ssh`` writes as ssh's ProxyCommand.

ssh starts that command for every connection (each scp, each rsync, each VS Code window), so
its start-up is every connection's latency. The full CLI loads typer, rich, httpx and the
settings before it does anything: about 0.6 s here. This path parses those arguments alone,
takes the token from LABSPACE_TOKEN or this computer's login, and loads only the tunnel
(aiohttp). Anything else (another form, --help, no token) returns None and the full CLI
runs, with its messages.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from labspace.remote.login import TOKEN_ENV, load_login
from labspace.remote.tunnel import Endpoint, TunnelRefused, stdio


def parse(args: list[str]) -> tuple[str, str, str, int] | None:
    """["ada/lab", "--url", "https://x", "--port", "22"] -> ("ada", "lab", "https://x", 22)."""
    if not args or "/" not in args[0] or args[0].startswith("-"):
        return None
    owner, _, name = args[0].partition("/")
    options = dict(zip(args[1::2], args[2::2], strict=False))
    if len(args[1:]) % 2 or not owner or not name or "/" in name \
            or set(options) - {"--url", "--port", "-p"} or "--url" not in options:
        return None
    port_text = options.get("--port", options.get("-p", "22"))
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return None
    return owner, name, options["--url"].rstrip("/"), int(port_text)


def token_for(url: str) -> str | None:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    login = load_login()
    return login.token if login is not None and login.url == url else None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (it is with labspace): bytes cost less CPU in each direction."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(args: list[str]) -> int | None:
    """The tunnel's exit code, or None when the full CLI should handle these arguments."""
    parsed = parse(args)
    if parsed is None:
        return None
    owner, name, url, port = parsed
    token = token_for(url)
    if token is None:
        return None
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(stdio(Endpoint(url, token, owner, name), port))
    except TunnelRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
