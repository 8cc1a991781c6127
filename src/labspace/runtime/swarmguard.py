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
chains), so a Docker restart that reorders the chains is covered without the hub's help; the
hub updates the service when the set of nodes changes.

A node that joins is guarded only once its guard task runs. Until then it must take no
workspace: workspace services are constrained to nodes labelled ``GUARDED_LABEL``, which
:class:`NodeGuard` sets on a node only after seeing its guard task running (at hub start and
at each reconcile).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from labspace.errors import RuntimeFailure
from labspace.runtime.base import LABEL_PREFIX
from labspace.runtime.docker import engine_json

GUARD_LABEL = LABEL_PREFIX + "node-guard"
# On a node whose guard runs; workspace services require it (node.labels...==1).
GUARDED_LABEL = LABEL_PREFIX + "guarded"
FORWARD_CHAIN = "LABSPACE-GUARD"
INPUT_CHAIN = "LABSPACE-GUARD-IN"
BRIDGE = "docker_gwbridge"
REFRESH_S = 5
log = logging.getLogger(__name__)


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


def nodes_to_mark(nodes: list[dict[str, Any]], guard_tasks: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """The nodes whose guard task runs but that lack GUARDED_LABEL."""
    running = {t.get("NodeID") for t in guard_tasks
               if (t.get("Status") or {}).get("State") == "running"
               and t.get("DesiredState") == "running"}
    return [n for n in nodes if n.get("ID") in running
            and ((n.get("Spec") or {}).get("Labels") or {}).get(GUARDED_LABEL) != "1"]


class NodeGuard:
    """Deploys the guard service, keeps its rules in step with the nodes, and marks the nodes
    where it runs (GUARDED_LABEL) so that only those take workspaces."""

    def __init__(self, docker: aiodocker.Docker, name: str, image: str,
                 allowed_ports: list[int]) -> None:
        self.docker, self.name, self.image, self.ports = docker, name, image, allowed_ports
        self._addresses: list[str] = []

    async def _query(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return await engine_json(self.docker, path, f"node guard {self.name}", method,
                                 **kwargs)

    async def ensure(self) -> int:
        """Deploy or update the service, mark the nodes it guards; the nodes not yet
        guarded (ready and active, without a running guard task) are counted."""
        nodes = [dict(n) for n in await self._query("nodes")]
        seen = sorted({str((n.get("Status") or {}).get("Addr") or "") for n in nodes})
        if seen != self._addresses:
            await self._deploy(seen)
            self._addresses = seen
        tasks = await self._query("tasks", params={"filters": json.dumps(
            {"service": [self.name], "desired-state": ["running"]})})
        for node in nodes_to_mark(nodes, tasks):
            spec = node["Spec"]
            spec["Labels"] = {**(spec.get("Labels") or {}), GUARDED_LABEL: "1"}
            await self._query(f"nodes/{node['ID']}/update", "POST",
                              params={"version": str(node["Version"]["Index"])},
                              data=json.dumps(spec))
            log.info("node %s is guarded: it takes workspaces now",
                     (node.get("Description") or {}).get("Hostname", node["ID"]))
        guarded = {t.get("NodeID") for t in tasks
                   if (t.get("Status") or {}).get("State") == "running"}
        return sum(1 for n in nodes if n.get("ID") not in guarded
                   and (n.get("Status") or {}).get("State") == "ready"
                   and (n.get("Spec") or {}).get("Availability") == "active")

    async def ensure_ready(self, timeout: float = 60.0) -> None:
        """ensure(), then wait (bounded) until every live node is guarded; the ones still
        not are left without workspaces until a later ensure() marks them."""
        waiting = await self.ensure()
        for _ in range(int(timeout / 0.5)):  # bounded: the tasks pull the image and start
            if not waiting:
                return
            await asyncio.sleep(0.5)
            waiting = await self.ensure()
        if waiting:
            log.warning("%d node(s) run no node guard yet (can they pull %s?); they take no "
                        "workspace until they do", waiting, self.image)

    async def _deploy(self, node_addresses: list[str]) -> None:
        info = await self._query("info")
        swarm = info.get("Swarm") or {}
        # A leader may report its Addr as 0.0.0.0; NodeAddr is this (manager) node's own.
        addresses = sorted({a for a in [*node_addresses, str(swarm.get("NodeAddr") or "")]
                            if a and a != "0.0.0.0"})
        pool = (swarm.get("Cluster") or {}).get("DefaultAddrPool") or ["10.0.0.0/8"]
        body = guard_service_spec(self.name, self.image, guard_rules(addresses, pool,
                                                                     self.ports))
        try:
            existing = dict(await self.docker.services.inspect(self.name))
        except DockerError as exc:
            if exc.status != 404:
                raise RuntimeFailure(f"node guard {self.name}: {exc.message}") from exc
            await self._query("services/create", "POST", data=json.dumps(body))
            return
        await self._query(f"services/{existing['ID']}/update", "POST",
                          params={"version": str(existing["Version"]["Index"])},
                          data=json.dumps(body))
