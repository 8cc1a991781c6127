"""The node guard: what keeps workspaces on a swarm node off that node and off every other.

Each workspace has an overlay of its own (no workspace shares a network with another), but a
task also gets Docker's ``docker_gwbridge`` for its traffic out, and through it would reach
its node's own services (sshd, the Docker API on TCP, a database) and every other node's
address. On one host, labspace's host firewall (runtime/hostfirewall.py) closes that; on a
swarm the hub does not run on the other nodes, so a global service does it there: one task
per node, on the host network with NET_ADMIN only, that keeps these rules in place:

* ``INPUT -i docker_gwbridge``: only replies and the allowed ports (labspace's public port);
* ``DOCKER-USER -i docker_gwbridge``: no new connection to any node's address (except the
  allowed ports) nor into the swarm's overlay address pool; the rest (the internet, the lab's
  other machines) goes out as it does on the single host.

The rules are rebuilt every few seconds (``iptables-restore --noflush`` on labspace's own
chains), so a Docker restart that reorders the chains, or a node that joins, is covered
without the hub's help; the hub updates the service when the set of nodes changes.
"""

from __future__ import annotations

from typing import Any

from labspace.runtime.base import LABEL_PREFIX

GUARD_LABEL = LABEL_PREFIX + "node-guard"
FORWARD_CHAIN = "LABSPACE-GUARD"
INPUT_CHAIN = "LABSPACE-GUARD-IN"
BRIDGE = "docker_gwbridge"
REFRESH_S = 5


def guard_rules(node_addresses: list[str], blocked_networks: list[str],
                allowed_ports: list[int]) -> str:
    """labspace's two chains, for ``iptables-restore --noflush``."""
    lines = ["*filter", f":{FORWARD_CHAIN} - [0:0]", f":{INPUT_CHAIN} - [0:0]",
             f"-F {FORWARD_CHAIN}", f"-F {INPUT_CHAIN}"]
    for chain in (FORWARD_CHAIN, INPUT_CHAIN):
        lines.append(f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN")
    for port in sorted(set(allowed_ports)):
        lines.append(f"-A {INPUT_CHAIN} -p tcp --dport {port} -j RETURN")
        lines += [f"-A {FORWARD_CHAIN} -d {address}/32 -p tcp --dport {port} -j RETURN"
                  for address in sorted(set(node_addresses))]
    lines += [f"-A {FORWARD_CHAIN} -d {address}/32 -j DROP"
              for address in sorted(set(node_addresses))]
    lines += [f"-A {FORWARD_CHAIN} -d {network} -j DROP" for network in blocked_networks]
    lines += [f"-A {INPUT_CHAIN} -j DROP", "COMMIT", ""]
    return "\n".join(lines)


def guard_script(rules: str) -> str:
    """The guard task's shell loop: apply the chains and hook them in, again and again."""
    hook = ("iptables -w 5 -C {table} -i {bridge} -j {chain} 2>/dev/null || "
            "iptables -w 5 -I {table} 1 -i {bridge} -j {chain}")
    forward = ("if iptables -w 5 -L DOCKER-USER -n >/dev/null 2>&1; then T=DOCKER-USER; "
               "else T=FORWARD; fi; " + hook.format(table="$T", bridge=BRIDGE,
                                                     chain=FORWARD_CHAIN))
    return "\n".join([
        "set -u",
        "cat > /tmp/rules <<'RULES'",
        rules.rstrip("\n"),
        "RULES",
        "while :; do",
        "  if iptables-restore -w 5 --noflush < /tmp/rules; then",
        f"    {hook.format(table='INPUT', bridge=BRIDGE, chain=INPUT_CHAIN)}",
        f"    {forward}",
        "    echo applied > /tmp/state",
        "  else echo 'labspace node guard: cannot apply the rules' >&2; fi",
        f"  sleep {REFRESH_S}",
        "done",
        "",
    ])


def guard_service_spec(name: str, image: str, rules: str) -> dict[str, Any]:
    """A global service: one guard task on every node, restarted whenever it exits."""
    return {
        "Name": name,
        "Labels": {GUARD_LABEL: "1"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image, "Command": ["sh", "-c", guard_script(rules)],
                "Labels": {GUARD_LABEL: "1"},
                "CapabilityDrop": ["ALL"], "CapabilityAdd": ["NET_ADMIN", "NET_RAW"],
                "ReadOnly": False,
            },
            "Networks": [{"Target": "host"}],
            "Resources": {"Limits": {"MemoryBytes": 64 * 1024**2, "NanoCPUs": 100_000_000}},
            "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000},
        },
        "Mode": {"Global": {}},
    }
