"""Helpers shared by the test suite and the benchmarks: a real labspace on free ports."""

from labspace.testing.stack import Stack, free_port, log_in, remove_instance, remove_network

__all__ = ["Stack", "free_port", "log_in", "remove_instance", "remove_network"]
