"""Which TCP ports a workspace listens on, read from the kernel's socket tables.

``/proc/net/tcp`` and ``/proc/net/tcp6`` inside the workspace's network namespace list every
socket; state ``0A`` is LISTEN. A port bound to loopback only (Dash's and Flask's default) is
reported too, marked, because the proxy reaches the workspace on its own address and so cannot
reach it: the page tells the user to bind to 0.0.0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

LISTEN = "0A"
PROC_FILES = ("/proc/net/tcp", "/proc/net/tcp6")
MAX_PORTS = 200  # a list for people: more than this is noise (a port scanner, a fork bomb)


@dataclass(frozen=True, order=True)
class Listener:
    port: int
    loopback_only: bool


def _is_loopback(address_hex: str) -> bool:
    if len(address_hex) == 8:  # IPv4, little-endian: 0100007F is 127.0.0.1
        return address_hex.upper().endswith("7F")
    # IPv6 ::1 (4 little-endian words), or an IPv4-mapped 127.x address
    upper = address_hex.upper()
    return upper == "00000000000000000000000001000000" or (
        upper.startswith("0000000000000000FFFF0000") and upper.endswith("7F"))


def parse_listeners(text: str) -> list[Listener]:
    """The listening ports in the concatenated text of ``/proc/net/tcp{,6}``, by port; a
    port bound both to loopback and to all addresses is reachable."""
    reachable: dict[int, bool] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        address, _, port_hex = fields[1].rpartition(":")
        try:
            port = int(port_hex, 16)
        except ValueError:
            continue
        if not 1 <= port <= 65535:
            continue
        reachable[port] = reachable.get(port, False) or not _is_loopback(address)
        if len(reachable) >= MAX_PORTS:
            break
    return sorted(Listener(port, not ok) for port, ok in reachable.items())
