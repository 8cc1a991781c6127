"""The proxy as a process: raise the open-files limit, serve the public port and the control
socket on uvloop, and shut down gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal

from labspace.config import Settings
from labspace.proxy.app import PROXY_KEY, create_app, start_proxy
from labspace.proxy.control import start_control
from labspace.proxy.source import RouteSource

log = logging.getLogger(__name__)


def _raise_open_files_limit() -> None:
    """Every client and upstream connection is a file descriptor: use the hard limit."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(settings: Settings, source: RouteSource) -> None:
    app = create_app(settings, source)
    runner = await start_proxy(app, settings.public_host, settings.public_port)
    proxy = app[PROXY_KEY]
    control = await start_control(proxy.revoke, proxy.share_changed, settings.control_socket,
                                  proxy.activity.snapshot if proxy.activity else None,
                                  proxy.metrics.exposition)
    log.info("proxy listening on %s:%s, hub at %s", settings.public_host,
             settings.public_port, settings.hub_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("proxy shutting down")
    finally:
        await control.cleanup()
        await runner.cleanup()


def run_proxy(settings: Settings, source: RouteSource) -> None:
    """Run the proxy until SIGTERM/SIGINT, on uvloop; then shut down gracefully."""
    import uvloop

    _raise_open_files_limit()
    uvloop.run(_serve(settings, source))
