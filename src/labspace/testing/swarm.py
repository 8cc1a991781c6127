"""A multi-node Docker Swarm on one machine, to test a Swarm runtime against a real swarm.

The host engine is the manager; each worker is a container running its own dockerd
(``labspace/swarm-node``: the debootstrapped base plus Debian's docker.io), hostnames
``lsnode1``... A host directory (the lab's NFS) is bind-mounted into every node at the same
path. A local registry (Debian's ``docker-registry``, TLS on docker0; the host engine trusts it
via /etc/docker/certs.d, the nodes list it as insecure) serves what :func:`push_image` pushes.
Everything made is named ``labspace-swarmtest...`` and recorded in ``root/state.json`` before it
is made, so :func:`teardown_swarm` removes exactly that, also after a failed setup, and leaves
the swarm only if it initialised it. No IPVS here: service VIPs answer nothing; use
``--endpoint-mode dnsrr`` and task addresses, from containers on an attachable overlay (the
host itself cannot reach overlay addresses). By hand: ``python -m labspace.testing.swarm
[down]``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labspace.images.build import HASH_LABEL, LOCAL_BASE, ensure_base, image_label
from labspace.runtime.docker import docker_runtime
from labspace.runtime.images import DockerImages
from labspace.runtime.swarmgateway import GATEWAY_LABEL
from labspace.runtime.swarmguard import FORWARD_CHAIN as GUARD_FORWARD_CHAIN
from labspace.runtime.swarmguard import INPUT_CHAIN as GUARD_INPUT_CHAIN

PREFIX = "labspace-swarmtest"
LABEL = "org.labspace.swarmtest"  # =node on node containers, =helper on helper containers
DEFAULT_ROOT = Path("/var/lib/labspace-swarmtest")
DEFAULT_SHARED_DIR = Path("/var/lib/labspace-swarmtest-nfs")
REGISTRY_PORT = 5000
CERTS_DIR = Path("/etc/docker/certs.d")
NODE_IMAGE = "labspace/swarm-node:bookworm"
TASK_IMAGE = "labspace/swarm-task:bookworm"
_APT = ("RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        "--no-install-recommends {} && rm -rf /var/lib/apt/lists/*\n")
NODE_DOCKERFILE = (f"FROM {LOCAL_BASE}\n" + _APT.format(
    "docker.io iptables ca-certificates procps busybox") + 'CMD ["dockerd"]\n')
# A small image for tasks: busybox's httpd, wget, nc (as `busybox httpd`). Its `wget -T`
# segfaults (Debian bookworm): bound a wget with coreutils' `timeout` instead.
TASK_DOCKERFILE = f"FROM {LOCAL_BASE}\n" + _APT.format("busybox") + 'CMD ["bash"]\n'

Progress = Callable[[str], None]


def stderr_progress(line: str) -> None:
    print(f"[swarm] {line}", file=sys.stderr, flush=True)


@dataclass
class SwarmNode:
    hostname: str  # the swarm node's hostname (lsnode1), for node.hostname constraints
    container: str  # the node container on the host engine (labspace-swarmtest-lsnode1)
    node_id: str
    address: str  # the node container's address on docker0 (its swarm address)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class SwarmCluster:
    manager_address: str  # the host's docker0 address: the manager and the registry listen here
    manager_id: str
    workers: list[SwarmNode]
    shared_dir: Path  # the same path on the host and in every node
    registry: str  # host:port of the local registry, prefix of push_image's references
    root: Path
    initialised_swarm: bool  # whether teardown leaves the swarm

    def node(self, hostname: str) -> SwarmNode:
        return next(n for n in self.workers if n.hostname == hostname)

    def on_node(self, hostname: str, *args: str, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A docker command on one worker's own engine (``docker exec <node> docker ...``)."""
        return docker("exec", self.node(hostname).container, "docker", *args, check=check,
                      timeout=timeout)

    def kill_node(self, hostname: str) -> None:
        """Kill a worker's container: its engine and every task on it die at once, as when a
        server loses power. The manager notices after its heartbeat grace (about 15 s)."""
        docker("kill", self.node(hostname).container)

    def revive_node(self, hostname: str, timeout: float = 60) -> None:
        """Start a killed worker again (its swarm state is on disk) and wait until Ready."""
        node = self.node(hostname)
        docker("start", node.container)
        self.wait_node_state(hostname, "ready", timeout)

    def wait_node_state(self, hostname: str, state: str, timeout: float = 60) -> None:
        node_id = self.node(hostname).node_id

        def reached() -> bool:
            found = _inspect("node", "inspect", node_id)
            return bool(found) and found[0].get("Status", {}).get("State") == state

        _wait(reached, timeout, lambda: f"{hostname} not {state} within {timeout:.0f} s")


@dataclass
class Task:
    id: str
    node_id: str
    state: str  # running, complete, failed, rejected...
    error: str
    addresses: dict[str, str]  # network name -> the task's address on it (no prefix length)


def docker(*args: str, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The docker command; RuntimeError with its stderr when it fails and ``check``."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _inspect(*args: str) -> list[dict[str, Any]]:
    done = docker(*args, check=False)
    return list(json.loads(done.stdout or "[]")) if done.returncode == 0 else []


def ensure_image(tag: str, dockerfile: str, progress: Progress = stderr_progress) -> str:
    """Build ``tag`` from ``dockerfile`` (its text) through the runtime's engine client,
    unless an image labelled with the text's hash exists (a changed text rebuilds)."""
    wanted = hashlib.sha256(dockerfile.encode()).hexdigest()[:32]

    async def build() -> None:
        async with docker_runtime() as runtime:
            await DockerImages(runtime).build(
                {"Dockerfile": dockerfile.encode()}, tag=tag, dockerfile="Dockerfile",
                labels={HASH_LABEL: wanted},
                progress=lambda line: progress(line) if line.startswith("Step") else None)

    # asyncio.run in a thread of its own: the caller may be inside an event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        if pool.submit(image_label, tag).result() == wanted:
            return tag
        started = time.monotonic()
        if LOCAL_BASE in dockerfile:  # the debootstrapped base, made from its cache if missing
            pool.submit(ensure_base, "debootstrap", progress=progress).result()
        progress(f"building {tag}")
        pool.submit(asyncio.run, build()).result()
        progress(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def _load(root: Path) -> dict[str, Any]:
    path = root / "state.json"
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _save(root: Path, state: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "state.json.tmp").write_text(json.dumps(state, indent=1))
    (root / "state.json.tmp").replace(root / "state.json")


def _docker0_address() -> str:
    found = _inspect("network", "inspect", "bridge")
    return str(found[0]["IPAM"]["Config"][0]["Gateway"]) if found else "172.17.0.1"


def _swarm_info(container: str = "") -> dict[str, Any]:
    """``docker info``'s Swarm part, of the host engine or of a node container's ({})."""
    exec_in = ["exec", container, "docker"] if container else []
    done = docker(*exec_in, "info", "--format", "{{json .Swarm}}", check=not container,
                  timeout=30)
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def _wait(done: Callable[[], object], timeout: float, failure: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(failure() or f"not done in {timeout:.0f} s")
        time.sleep(0.3)


def _rmdir_quietly(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


def _answers(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


_REGISTRIES: dict[int, subprocess.Popen[bytes]] = {}  # started by this process: reaped here


def _is_our_registry(pid: int, config: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return "docker-registry" in cmdline and str(config) in cmdline and ") Z " not in stat


def _ensure_registry(root: Path, state: dict[str, Any], host: str, port: int,
                     progress: Progress) -> None:
    directory = root / "registry"
    config, cert, key = (directory / n for n in ("config.yml", "registry.crt", "registry.key"))
    pid = int(state.get("registry_pid") or 0)
    if pid and _is_our_registry(pid, config) and _answers(host, port):
        progress(f"registry: reusing pid {pid} on {host}:{port}")
        return
    if _answers(host, port):
        raise RuntimeError(f"{host}:{port} is taken by something that is not our registry")
    if shutil.which("docker-registry") is None:
        progress("registry: apt-get install docker-registry")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "docker-registry"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
    directory.mkdir(parents=True, exist_ok=True)
    if not cert.is_file():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", f"/CN={PREFIX}-registry", "-addext", f"subjectAltName=IP:{host}",
                        "-keyout", str(key), "-out", str(cert)], capture_output=True, check=True)
    trusted = CERTS_DIR / f"{host}:{port}"  # the engine reads it per pull/push: no restart
    if not trusted.exists():
        state.update(certs_dir_created=not CERTS_DIR.exists(), trusted_dir=str(trusted))
        _save(root, state)
        trusted.mkdir(parents=True)
        shutil.copyfile(cert, trusted / "ca.crt")
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")},
                    "delete": {"enabled": True}},
        "http": {"addr": f"{host}:{port}", "tls": {"certificate": str(cert), "key": str(key)}},
    }))
    with open(directory / "registry.log", "ab") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    _REGISTRIES[process.pid] = process
    state["registry_pid"] = process.pid
    _save(root, state)
    _wait(lambda: process.poll() is not None or _answers(host, port), 20,
          lambda: f"the registry did not answer on {host}:{port} in 20 s")
    if process.poll() is not None:
        tail = (directory / "registry.log").read_text()[-2000:]
        raise RuntimeError(f"the registry did not start on {host}:{port}:\n{tail}")
    progress(f"registry: pid {process.pid} on https://{host}:{port}")


def _stop_registry(pid: int, config: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _is_our_registry(pid, config):  # checked each time: never signal another
            break
        os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while _is_our_registry(pid, config) and time.monotonic() < deadline:
            if pid in _REGISTRIES:
                _REGISTRIES[pid].poll()  # reap our own child
            time.sleep(0.1)
    if (process := _REGISTRIES.pop(pid, None)) is not None:
        process.wait()


def push_image(cluster: SwarmCluster, local_tag: str) -> str:
    """Tag and push a local image into the cluster's registry; return the reference
    (``<registry>/<name>:<tag>``) that services use and every node can pull."""
    name = local_tag if ":" in local_tag.rsplit("/", 1)[-1] else f"{local_tag}:latest"
    ref = f"{cluster.registry}/{name}"
    docker("tag", local_tag, ref)
    docker("push", ref, timeout=600)
    return ref


def service_tasks(service: str) -> list[Task]:
    """The service's tasks meant to run or have run (desired state running or complete)."""
    ids = docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    tasks = []
    for data in _inspect("inspect", "--type", "task", *ids) if ids else []:
        if data.get("DesiredState") in ("running", "complete"):
            addresses = {a["Network"]["Spec"]["Name"]: a["Addresses"][0].split("/")[0]
                         for a in data.get("NetworksAttachments") or [] if a.get("Addresses")}
            status = data.get("Status") or {}
            tasks.append(Task(data["ID"], data.get("NodeID", ""), status.get("State", ""),
                              status.get("Err", ""), addresses))
    return tasks


def wait_tasks(service: str, state: str = "running", count: int = 1,
               timeout: float = 120) -> list[Task]:
    """Wait until ``count`` tasks of the service are in ``state``; fail fast on a failed one."""
    deadline = time.monotonic() + timeout
    tasks: list[Task] = []
    while time.monotonic() < deadline:
        tasks = service_tasks(service)
        if bad := [t for t in tasks if t.state in ("failed", "rejected") and t.state != state]:
            raise RuntimeError(f"{service}: task {bad[0].id} {bad[0].state}: {bad[0].error}")
        if len(done := [t for t in tasks if t.state == state]) >= count:
            return done
        time.sleep(0.3)
    raise TimeoutError(f"{service}: not {count} task(s) {state} in {timeout} s: {tasks}")


def _ensure_manager(root: Path, state: dict[str, Any], address: str,
                    progress: Progress) -> str:
    info = _swarm_info()
    if info.get("LocalNodeState") == "active":
        if not info.get("ControlAvailable"):
            raise RuntimeError("the host engine is a swarm worker; it must be a manager")
        state["initialised_swarm"] = mine = state.get("swarm_node_id") == info.get("NodeID")
        progress("swarm: reusing ours" if mine else "swarm: host is already a manager (not ours)")
        return str(info["NodeID"])
    state.update(initialised_swarm=True,
                 gwbridge_existed=bool(_inspect("network", "inspect", "docker_gwbridge")))
    _save(root, state)
    progress(f"swarm: init on {address}")
    docker("swarm", "init", "--advertise-addr", address, "--listen-addr", f"{address}:2377")
    state["swarm_node_id"] = node_id = str(_swarm_info()["NodeID"])
    _save(root, state)
    return node_id


def _start_worker(root: Path, state: dict[str, Any], hostname: str, shared: Path,
                  registry: str, join: list[str], manager_id: str,
                  progress: Progress) -> SwarmNode:
    container = f"{PREFIX}-{hostname}"
    current = _swarm_info(container)
    managers = [m.get("NodeID") for m in current.get("RemoteManagers") or []]
    if current.get("LocalNodeState") == "active" and manager_id in managers and \
            _inspect("node", "inspect", str(current.get("NodeID"))):
        progress(f"{hostname}: reusing")
    else:
        _remove_worker(container, str(state["nodes"].get(hostname, "")))
        data = root / "nodes" / hostname
        data.mkdir(parents=True, exist_ok=True)
        progress(f"{hostname}: starting dockerd")
        docker("run", "-d", "--name", container, "--hostname", hostname, "--label", f"{LABEL}=node",
               "--init", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
               "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
               "--security-opt", "systempaths=unconfined",
               "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", f"{data}:/var/lib/docker",
               "-v", f"{shared}:{shared}", NODE_IMAGE,
               # a killed node restarts: its dead dockerd's pid files would stop the new one
               "sh", "-c", 'rm -rf /var/run/docker.pid /var/run/docker; exec dockerd "$@"', "-",
               "--insecure-registry", registry,
               # the node's containers in cgroups of their own, removed with the node
               "--cgroup-parent", f"/{container}")
        _wait(lambda: _swarm_info(container).get("LocalNodeState") == "inactive", 60,
              lambda: f"{hostname}: dockerd did not start:\n"
                      + docker("logs", "--tail", "30", container, check=False).stderr)
        docker("exec", container, "docker", "swarm", "join", *join)
    node_id = str(_swarm_info(container)["NodeID"])
    address = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()
    return SwarmNode(hostname, container, node_id, address)


def setup_swarm(workers: int = 2, labels: Mapping[str, Mapping[str, str]] | None = None, *,
                root: Path = DEFAULT_ROOT, shared_dir: Path = DEFAULT_SHARED_DIR,
                registry_port: int = REGISTRY_PORT,
                progress: Progress = stderr_progress) -> SwarmCluster:
    """Make the cluster, reusing what already exists: the host as manager, ``workers`` node
    containers joined and Ready with ``labels`` ({"lsnode1": {"bigmem": "true"}}) exactly,
    the shared directory and the registry. On failure, tears down and raises."""
    started = time.monotonic()
    state = _load(root)
    state.setdefault("shared_dir", str(shared_dir))
    state.setdefault("shared_created", not shared_dir.exists())
    nodes: dict[str, str] = state.setdefault("nodes", {})
    _save(root, state)
    try:
        ensure_image(NODE_IMAGE, NODE_DOCKERFILE, progress)
        address = _docker0_address()
        state["registry"] = registry = f"{address}:{registry_port}"
        shared_dir.mkdir(parents=True, exist_ok=True)
        _ensure_registry(root, state, address, registry_port, progress)
        manager_id = _ensure_manager(root, state, address, progress)
        token = docker("swarm", "join-token", "-q", "worker").stdout.strip()
        wanted = [f"lsnode{i}" for i in range(1, workers + 1)]
        for hostname in [h for h in nodes if h not in wanted]:  # a bigger cluster before
            _remove_worker(f"{PREFIX}-{hostname}", nodes.pop(hostname))
        nodes.update({h: nodes.get(h, "") for h in wanted})  # recorded before being made
        _save(root, state)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            made = list(pool.map(lambda h: _start_worker(
                root, state, h, shared_dir, registry, ["--token", token, f"{address}:2377"],
                manager_id, progress), wanted))
        nodes.update({n.hostname: n.node_id for n in made})
        _save(root, state)
        found: dict[str, Any] = {}

        def ready() -> bool:
            found.update({n["ID"]: n for n in _inspect("node", "inspect", *nodes.values())})
            return all(found.get(n.node_id, {}).get("Status", {}).get("State") == "ready"
                       for n in made)

        _wait(ready, 60, lambda: f"worker nodes not ready in 60 s: {found}")
        for node in made:
            node.labels = dict((labels or {}).get(node.hostname, {}))
            current = found[node.node_id]["Spec"].get("Labels") or {}
            args = [f"--label-rm={k}" for k in current if k not in node.labels]
            args += [f"--label-add={k}={v}" for k, v in node.labels.items() if current.get(k) != v]
            if args:
                docker("node", "update", *args, node.node_id)
    except BaseException:
        progress("setup failed: tearing down what was made")
        teardown_swarm(root=root, progress=progress)
        raise
    progress(f"cluster ready in {time.monotonic() - started:.1f} s")
    return SwarmCluster(address, manager_id, made, shared_dir, registry, root,
                        bool(state["initialised_swarm"]))


def _remove_worker(container: str, node_id: str) -> None:
    if _inspect("container", "inspect", container):
        node_id = node_id or str(_swarm_info(container).get("NodeID") or "")
        # Kill the node's containers, then stop its dockerd: no task process or cgroup is
        # left. (No `swarm leave` in the node: it waits ~6 s; `node rm --force` does it.)
        docker("exec", container, "sh", "-c", "docker rm -f $(docker ps -aq) 2>/dev/null",
               check=False, timeout=60)
        docker("stop", "-t", "30", container, check=False, timeout=60)
        docker("rm", "-f", "-v", container, check=False)
    if node_id and _inspect("node", "inspect", node_id):
        docker("node", "rm", "--force", node_id, check=False)
    for controller in Path("/sys/fs/cgroup").glob(f"*/{container}"):
        for directory in sorted(controller.glob("**/"), key=lambda p: -len(p.parts)):
            _rmdir_quietly(directory)


def _ours(kind: str) -> list[str]:
    """Services or networks named labspace-swarmtest... or labelled org.labspace.swarmtest."""
    names = docker(kind, "ls", "--format", "{{.Name}}", check=False).stdout.split()
    labelled = docker(kind, "ls", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
    return [name for name in names if name.startswith(PREFIX)] + labelled


def _drop_guard_chains() -> None:
    """The node guard's chains on the host (the manager is a node too; its guard task keeps
    them while it runs and never removes them)."""
    for table, chain in (("INPUT", GUARD_INPUT_CHAIN), ("DOCKER-USER", GUARD_FORWARD_CHAIN),
                         ("FORWARD", GUARD_FORWARD_CHAIN)):
        for _ in range(10):  # bounded: one jump is removed per call
            if subprocess.run(["iptables", "-w", "5", "-D", table, "-i", "docker_gwbridge",
                               "-j", chain], capture_output=True, check=False).returncode:
                break
    for chain in (GUARD_INPUT_CHAIN, GUARD_FORWARD_CHAIN):
        subprocess.run(["iptables", "-w", "5", "-F", chain], capture_output=True, check=False)
        subprocess.run(["iptables", "-w", "5", "-X", chain], capture_output=True, check=False)


def teardown_swarm(cluster: SwarmCluster | None = None, *, root: Path = DEFAULT_ROOT,
                   progress: Progress = stderr_progress) -> None:
    """Remove what setup_swarm made (as its state file records), and the services, networks
    and helper containers that tests made with this module's name prefix or label."""
    root = cluster.root if cluster else root
    state = _load(root)
    nodes = {str(h): str(i) for h, i in state.get("nodes", {}).items()}
    found = docker("ps", "-a", "--filter", f"label={LABEL}=node", "--format", "{{.Names}}")
    for name in found.stdout.split():  # made by a setup whose state was lost
        nodes.setdefault(name.removeprefix(f"{PREFIX}-"), "")
    if not state and not nodes:
        return
    for container in docker("ps", "-aq", "--filter", f"label={LABEL}=helper").stdout.split():
        docker("rm", "-f", container, check=False)
    for container in docker("ps", "-a", "--filter", f"label={GATEWAY_LABEL}",
                            "--format", "{{.Names}}").stdout.split():
        if container.startswith(PREFIX):  # SwarmRuntime's gateways in tests
            docker("rm", "-f", container, check=False)
    swarm = _swarm_info()
    if swarm.get("ControlAvailable"):
        for service in _ours("service"):
            docker("service", "rm", service, check=False)
        deadline = time.monotonic() + 30  # the tasks go first, then their networks can
        while _ours("network") and time.monotonic() < deadline:
            for network in _ours("network"):
                docker("network", "rm", network, check=False)
            time.sleep(0.5)
    progress(f"removing nodes {', '.join(nodes) or '(none)'}")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(_remove_worker, [f"{PREFIX}-{h}" for h in nodes], nodes.values()))
    if state.get("initialised_swarm") and swarm.get("NodeID") == state.get("swarm_node_id"):
        progress("swarm: leaving (the host engine is a plain engine again)")
        docker("swarm", "leave", "--force", timeout=60)
        if not state.get("gwbridge_existed"):
            docker("network", "rm", "docker_gwbridge", check=False)
    _drop_guard_chains()  # after the guard's task on this host has gone with the swarm
    if state.get("registry_pid"):
        _stop_registry(int(state["registry_pid"]), root / "registry" / "config.yml")
    for tag in docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if state.get("registry") and tag.startswith(f"{state['registry']}/"):
            docker("rmi", tag, check=False)  # push_image's tags (the layers stay)
    if state.get("trusted_dir"):
        shutil.rmtree(state["trusted_dir"], ignore_errors=True)
        if state.get("certs_dir_created"):
            _rmdir_quietly(CERTS_DIR)
    if state.get("shared_created"):
        shutil.rmtree(state["shared_dir"], ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    progress("torn down")


if __name__ == "__main__":
    if sys.argv[1:] == ["down"]:
        teardown_swarm()
    else:
        print(setup_swarm(labels={"lsnode1": {"bigmem": "true"}}))
