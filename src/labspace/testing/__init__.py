"""Helpers shared by the test suite and the benchmarks: a real labspace on free ports, and
an in-memory runtime for the lifecycle logic."""

from labspace.testing.fakeruntime import FakeRuntime
from labspace.testing.stack import (
    LocalBrowser,
    Stack,
    free_port,
    log_in,
    remove_instance,
    remove_network,
)

__all__ = [
    "FakeRuntime",
    "LocalBrowser",
    "Stack",
    "free_port",
    "log_in",
    "remove_instance",
    "remove_network",
]
