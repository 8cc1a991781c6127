"""Helpers shared by the test suite and the benchmarks: a real labspace on free ports."""

from labspace.testing.stack import (
    LocalBrowser,
    Stack,
    free_port,
    log_in,
    remove_instance,
    remove_network,
)

__all__ = [
    "LocalBrowser",
    "Stack",
    "free_port",
    "log_in",
    "remove_instance",
    "remove_network",
]
