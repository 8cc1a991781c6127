"""The data path into the swarm: how this host reaches workspaces on any node (runtime=swarm).

A process on the host cannot reach overlay addresses; a container attached to the overlay
can. So labspace runs one small gateway container here, on a bridge network of its own and
attached to every workspace's overlay, with IP forwarding on; the host routes each workspace
overlay's subnet via the gateway's bridge address. The proxy and the hub's health checks then
reach a task at its overlay address the way they reach a container on the single-host bridge:
kernel routing, no relay process copying bytes, nothing in the proxy that knows about Swarm.

The gateway's firewall is labspace's, written from the host into the gateway's network
namespace (``nsenter``; the gateway itself holds no capability):

* it forwards only connections this host opens (source: the host's address on the gateway's
  bridge, arriving on that bridge; reverse-path filtering drops spoofed sources), and
  masquerades them, so tasks answer the gateway on their overlay;
* nothing from a workspace's overlay is forwarded or accepted: a workspace cannot use the
  gateway to reach the host, the lab network or another workspace's overlay.

A route is never laid over one of the host's own: an overlay subnet that overlaps a network
the host already routes is refused with a message (set the swarm's ``--default-addr-pool``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from labspace.errors import RuntimeFailure
from labspace.runtime.base import LABEL_PREFIX
from labspace.runtime.docker import bridge_device, engine_json, ensure_bridge

GATEWAY_LABEL = LABEL_PREFIX + "gateway"


def gateway_rules(bridge_interface: str, host_address: str) -> str:
    """The gateway's whole filter and nat tables, for ``iptables-restore``."""
    return "\n".join([
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        f"-A FORWARD -i {bridge_interface} -s {host_address}/32 "
        f"! -o {bridge_interface} -j ACCEPT",
        "COMMIT",
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        f"-A POSTROUTING -s {host_address}/32 ! -o {bridge_interface} -j MASQUERADE",
        "COMMIT",
        "",
    ])


def overlapping_route(subnet: str, routes: list[dict[str, Any]],
                      our_device: str) -> str | None:
    """The host route ``subnet`` would shadow or collide with (not the default route, nor one
    through the gateway's bridge ``our_device``, which labspace may replace), or None."""
    network = ipaddress.ip_network(subnet, strict=False)
    for route in routes:
        destination = route.get("dst", "")
        if destination in ("default", "") or route.get("dev") == our_device:
            continue
        try:
            other = ipaddress.ip_network(destination, strict=False)
        except ValueError:
            continue
        if other.version == network.version and other.overlaps(network):
            return f"{destination} dev {route.get('dev', '?')}"
    return None


def interface_with(address: str, ip_addr_json: list[dict[str, Any]]) -> str | None:
    """The interface holding ``address`` in ``ip -j addr`` output."""
    for link in ip_addr_json:
        for info in link.get("addr_info") or []:
            if info.get("local") == address:
                return str(link.get("ifname"))
    return None


async def _run(*args: str, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode:
        raise RuntimeFailure(f"{' '.join(args[:4])} failed: "
                             f"{err.decode(errors='replace').strip()}")
    return out.decode()


class Gateway:
    """The gateway container ``name`` on the bridge network ``name``, and the host's routes."""

    def __init__(self, docker: aiodocker.Docker, name: str, image: str) -> None:
        self.docker = docker
        self.name = name
        self.image = image
        self._pid = 0
        self._address = ""  # the gateway's address on its bridge: where routes point
        self._device = ""  # the host's side of that bridge (br-<network id>)
        self._lock = asyncio.Lock()

    async def _query(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return await engine_json(self.docker, path, f"swarm gateway: {method} {path}", method,
                                 **kwargs)

    async def ensure(self) -> None:
        """Bridge, container, firewall and routes in place; cheap when nothing changed (one
        inspect), and redone in full when the gateway was restarted (a new namespace)."""
        async with self._lock:
            data = await self._container()
            if data["State"]["Pid"] == self._pid and data["State"]["Running"]:
                return
            if not data["State"]["Running"]:
                await self._query(f"containers/{data['Id']}/start", "POST")
                data = await self._container()
            await self._configure(data)

    async def _container(self) -> dict[str, Any]:
        try:
            return dict(await self.docker._query_json(f"containers/{self.name}/json"))
        except DockerError as exc:
            if exc.status != 404:
                raise RuntimeFailure(f"cannot inspect {self.name}: {exc.message}") from exc
        await ensure_bridge(self.docker, self.name, {GATEWAY_LABEL: "1"})
        body = {
            "Image": self.image, "Cmd": ["sleep", "infinity"], "Entrypoint": [],
            "Labels": {GATEWAY_LABEL: "1"},
            "HostConfig": {
                "NetworkMode": self.name, "CapDrop": ["ALL"], "ReadonlyRootfs": True,
                "SecurityOpt": ["no-new-privileges"], "Memory": 64 * 1024**2,
                "RestartPolicy": {"Name": "unless-stopped"},
                "Sysctls": {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "1",
                            "net.ipv4.conf.default.rp_filter": "1"},
            },
        }
        created = await self._query("containers/create", "POST",
                                    params={"name": self.name}, data=json.dumps(body))
        await self._query(f"containers/{created['Id']}/start", "POST")
        return dict(await self._query(f"containers/{created['Id']}/json"))

    async def _configure(self, data: dict[str, Any]) -> None:
        networks = data["NetworkSettings"]["Networks"]
        bridge = networks.get(self.name) or {}
        address, host_address = bridge.get("IPAddress"), bridge.get("Gateway")
        if not address or not host_address:
            raise RuntimeFailure(f"the swarm gateway {self.name} has no address on its bridge")
        pid = int(data["State"]["Pid"])
        namespace = ["nsenter", f"--net=/proc/{pid}/ns/net"]
        links = json.loads(await _run(*namespace, "ip", "-j", "-4", "addr", "show"))
        interface = interface_with(address, links)
        if interface is None:
            raise RuntimeFailure(f"the swarm gateway's address {address} is on no interface")
        await _run(*namespace, "iptables-restore", stdin=gateway_rules(interface, host_address))
        self._pid, self._address = pid, address
        self._device = bridge_device(await self._query(f"networks/{bridge['NetworkID']}"))
        for network_id, attached in networks.items():
            if network_id != self.name and attached.get("NetworkID"):
                await self._route(attached["NetworkID"])

    async def attached(self) -> set[str]:
        """The ids of the networks the gateway is on."""
        data = await self._container()
        return {n.get("NetworkID", "") for n in data["NetworkSettings"]["Networks"].values()}

    async def attach(self, network_id: str) -> None:
        """Join a workspace's overlay and route its subnet through the gateway."""
        await self.ensure()
        try:
            await self.docker._query_json(f"networks/{network_id}/connect", "POST",
                                          data=json.dumps({"Container": self.name}))
        except DockerError as exc:
            # 409 "already attached" (an overlay), 403 "already exists" (older engines).
            if exc.status not in (403, 409) or "already" not in exc.message:
                raise RuntimeFailure(f"cannot attach the swarm gateway to {network_id}: "
                                     f"{exc.message}", detail=repr(exc)) from exc
        await self._route(network_id)

    async def detach(self, network_id: str) -> None:
        """Drop a workspace overlay's route and leave it (before the network is removed)."""
        routes = json.loads(await _run("ip", "-j", "-4", "route", "show"))
        for subnet in await self._subnets(network_id):
            if any(r.get("dst") == subnet and r.get("dev") == self._device for r in routes):
                await _run("ip", "route", "del", subnet, "dev", self._device)
        try:
            await self.docker._query_json(f"networks/{network_id}/disconnect", "POST",
                                          data=json.dumps({"Container": self.name,
                                                           "Force": True}))
        except DockerError as exc:
            if exc.status not in (404, 500):
                raise RuntimeFailure(f"cannot detach the swarm gateway from {network_id}: "
                                     f"{exc.message}", detail=repr(exc)) from exc

    async def _subnets(self, network_id: str) -> list[str]:
        try:
            network = await self.docker._query_json(f"networks/{network_id}")
        except DockerError as exc:
            if exc.status == 404:
                return []
            raise RuntimeFailure(f"cannot inspect network {network_id}: {exc.message}") from exc
        return [c["Subnet"] for c in ((network.get("IPAM") or {}).get("Config") or [])
                if c.get("Subnet") and ":" not in c["Subnet"]]

    async def _route(self, network_id: str) -> None:
        routes = json.loads(await _run("ip", "-j", "-4", "route", "show"))
        for subnet in await self._subnets(network_id):
            clash = overlapping_route(subnet, routes, self._device)
            if clash is not None:
                raise RuntimeFailure(
                    f"the workspace network's subnet {subnet} overlaps this host's route "
                    f"{clash}; give the swarm another address pool (docker swarm init "
                    f"--default-addr-pool) so workspaces cannot shadow the lab's networks")
            await _run("ip", "route", "replace", subnet, "via", self._address)
