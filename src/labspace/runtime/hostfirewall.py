"""Keep workspaces off the host: packets from the workspaces' bridge to the host itself are
dropped, except replies to connections the host opened (the proxy, health checks) and the
ports named as allowed (the public port, so a workspace can use labspace's own URL).

Docker's rules only cover traffic between containers and the outside (FORWARD); a container
can otherwise reach every service the host listens on through its gateway address (SSH,
databases, a Docker API on TCP). This adds one chain per bridge to INPUT, rebuilt on every
call, so applying it twice changes nothing and changed ports are picked up.
"""

from __future__ import annotations

import asyncio
import shutil

from labspace.errors import RuntimeFailure


def chain_name(bridge: str) -> str:
    return f"LABSPACE-{bridge}"[:28]  # iptables chain names are at most 28 characters


def rules(bridge: str, allowed_ports: list[int]) -> list[list[str]]:
    chain = chain_name(bridge)
    commands = [
        ["-F", chain],
        ["-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"],
    ]
    commands += [["-A", chain, "-p", "tcp", "--dport", str(port), "-j", "RETURN"]
                 for port in sorted(set(allowed_ports))]
    commands.append(["-A", chain, "-j", "DROP"])
    return commands


async def _iptables(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "iptables", "-w", "10", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace").strip()


async def isolate_host(bridge: str, allowed_ports: list[int]) -> None:
    """Apply (or refresh) the rules for ``bridge``; RuntimeFailure when they cannot be."""
    if shutil.which("iptables") is None:
        raise RuntimeFailure(
            "iptables is missing, so workspaces could reach the host's ports: install the "
            "iptables package, or set isolate_host = false to accept that"
        )
    chain = chain_name(bridge)
    await _iptables("-N", chain)  # fails harmlessly when the chain exists
    for command in rules(bridge, allowed_ports):
        code, output = await _iptables(*command)
        if code != 0:
            raise RuntimeFailure(f"cannot apply host firewall rule {' '.join(command)}: "
                                 f"{output}")
    jump = ["INPUT", "-i", bridge, "-j", chain]
    if (await _iptables("-C", *jump))[0] != 0:
        code, output = await _iptables("-I", *jump)
        if code != 0:
            raise RuntimeFailure(f"cannot attach the host firewall to {bridge}: {output}")


def release_commands(bridge: str) -> list[list[str]]:
    """iptables argument lists that remove the rules for ``bridge`` (when its network goes)."""
    chain = chain_name(bridge)
    return [["-D", "INPUT", "-i", bridge, "-j", chain], ["-F", chain], ["-X", chain]]
