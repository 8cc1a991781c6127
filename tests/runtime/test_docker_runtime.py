"""DockerRuntime on the real engine: lifecycle, limits, confinement, isolation, concurrency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from labspace.errors import Conflict, InvalidInput, NotFound, RuntimeFailure
from labspace.runtime.base import ContainerSpec, Limits, Mount
from labspace.runtime.docker import (
    BASE_CAPS,
    SUDO_CAPS,
    DockerRuntime,
    cpu_percent,
    memory_usage,
)

pytestmark = pytest.mark.docker

SpecFactory = Callable[..., ContainerSpec]
SLEEP = ["sleep", "300"]

# Linux capability numbers (include/uapi/linux/capability.h).
CAP_NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10,
    "NET_RAW": 13, "SYS_CHROOT": 18, "SYS_ADMIN": 21, "MKNOD": 27, "AUDIT_WRITE": 29,
    "SETFCAP": 31,
}  # fmt: skip


def cap_mask(names: list[str]) -> int:
    return sum(1 << CAP_NUMBERS[name] for name in names)


def proc_status_field(text: str, field: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return value.strip()
    raise AssertionError(f"{field} not in /proc status:\n{text}")


async def running(runtime: DockerRuntime, spec: ContainerSpec) -> str:
    info = await runtime.create(spec)
    started = await runtime.start(info.id)
    assert started.running, started
    return info.id


async def test_round_trip(docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory):
    mine = {"org.labspace.test-case": uuid.uuid4().hex}
    spec = make_spec(
        base_image,
        command=["bash", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 300"],
        env={"GREETING": "hello there"},
        labels=mine,
        hostname="roundtrip",
        ports=[8888, 2222],
    )
    created = await docker_runtime.create(spec)
    assert created.status == "created"
    assert created.endpoints == {}  # reachable only while running
    assert created.name == spec.name
    assert created.labels[("org.labspace.test-case")] == mine["org.labspace.test-case"]
    assert created.ip_address is None

    started = await docker_runtime.start(created.id)
    assert started.running and started.ip_address and started.started_at
    # Where each port is reachable is the runtime's answer, not something callers build.
    ip = started.ip_address
    assert started.endpoints == {8888: f"http://{ip}:8888", 2222: f"http://{ip}:2222"}
    # The backend's own state, kept with the instance record: the network it joined.
    assert started.state == {"engine": "docker", "network": spec.network or "default"}
    log_config = json.loads(subprocess.run(
        ["docker", "inspect", "-f", "{{json .HostConfig.LogConfig}}", created.id],
        capture_output=True, text=True, check=True).stdout)
    assert log_config == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert (await docker_runtime.start(created.id)).running  # starting twice is fine

    inspected = await docker_runtime.inspect(spec.name)
    assert inspected is not None and inspected.id == created.id
    listed = await docker_runtime.list(mine)
    assert [info.id for info in listed] == [created.id]
    assert listed[0].running and listed[0].ip_address == started.ip_address
    assert listed[0].endpoints == started.endpoints and listed[0].state == started.state

    for _ in range(50):
        logs = await docker_runtime.logs(created.id, tail=10)
        if "to-stderr" in logs and "to-stdout" in logs:
            break
        await asyncio.sleep(0.1)
    assert "to-stdout" in logs and "to-stderr" in logs
    assert (await docker_runtime.logs(created.id, tail=1)).count("\n") == 1

    result = await docker_runtime.exec(
        created.id, ["bash", "-c", 'echo "$GREETING on $(hostname)"; echo oops >&2; exit 7']
    )
    assert result.exit_code == 7
    assert "hello there on roundtrip" in result.output and "oops" in result.output
    who = await docker_runtime.exec(created.id, ["id", "-u"], user="65534")
    assert (who.exit_code, who.output.strip()) == (0, "65534")

    stats = await docker_runtime.stats(created.id)
    assert stats.memory_bytes > 0 and stats.cpu_percent >= 0
    assert stats.memory_limit_bytes is None

    await docker_runtime.stop(created.id, timeout=1)
    await docker_runtime.stop(created.id, timeout=1)  # stopping a stopped one is fine
    stopped = await docker_runtime.inspect(created.id)
    assert stopped is not None and stopped.status == "exited" and stopped.ip_address is None
    assert stopped.exit_code is not None
    assert (await docker_runtime.list(mine))[0].exit_code == stopped.exit_code

    await docker_runtime.remove(created.id)
    await docker_runtime.remove(created.id)  # removing twice is fine
    assert await docker_runtime.inspect(created.id) is None
    assert await docker_runtime.list(mine) == []
    await docker_runtime.stop(created.id)  # stopping a removed one is fine too
    with pytest.raises(NotFound):
        await docker_runtime.start(created.id)
    with pytest.raises(NotFound):
        await docker_runtime.logs(created.id)


async def test_an_app_that_exits_leaves_its_code_and_logs(
        docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory):
    """What a failed start reports (the lifecycle logic is tested on the FakeRuntime): the exit
    code and the last log lines of a container whose app has exited."""
    spec = make_spec(base_image, command=["sh", "-c", "echo boom-from-app >&2; exit 3"])
    created = await docker_runtime.create(spec)
    await docker_runtime.start(created.id)
    for _ in range(100):  # bounded: 100 x 50 ms
        info = await docker_runtime.inspect(created.id)
        if info is not None and not info.running:
            break
        await asyncio.sleep(0.05)
    assert info is not None and info.status == "exited" and info.exit_code == 3
    assert info.endpoints == {}
    assert "boom-from-app" in await docker_runtime.logs(created.id, tail=5)
    await docker_runtime.remove(created.id)


async def test_duplicate_name_conflicts(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory
):
    spec = make_spec(base_image, command=SLEEP)
    await docker_runtime.create(spec)
    with pytest.raises(Conflict):
        await docker_runtime.create(spec)


CGROUP_SCRIPT = """
if [ -f /sys/fs/cgroup/cpu.max ]; then
  echo v2; cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max
  echo swap; cat /sys/fs/cgroup/memory.swap.max
else
  cd /sys/fs/cgroup
  echo v1; cat cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us memory/memory.limit_in_bytes \
    pids/pids.max
  echo swap; cat memory/memory.memsw.limit_in_bytes 2>/dev/null || echo unsupported
fi
"""


async def test_limits_applied(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory
):
    memory = 96 * 1024 * 1024
    spec = make_spec(
        base_image, command=SLEEP, limits=Limits(cpus=0.5, memory_bytes=memory, pids=64)
    )
    cid = await running(docker_runtime, spec)
    result = await docker_runtime.exec(cid, ["bash", "-c", CGROUP_SCRIPT])
    assert result.exit_code == 0, result.output
    lines = result.output.split()
    print("cgroup limits seen inside:", lines)
    if lines[0] == "v2":
        quota, period, mem, pids, _, swap = lines[1:]
        assert int(swap) == 0
    else:
        quota, period, mem, pids, _, swap = lines[1:]
        if swap != "unsupported":  # memsw exists only with swap accounting enabled
            assert int(swap) == memory
    assert int(quota) / int(period) == pytest.approx(0.5)
    assert int(mem) == memory
    assert int(pids) == 64
    stats = await docker_runtime.stats(cid)
    assert stats.memory_limit_bytes == memory


@pytest.mark.parametrize("sudo", [False, True], ids=["no-sudo", "sudo"])
async def test_capabilities_and_no_new_privileges(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory, sudo: bool
):
    cid = await running(docker_runtime, make_spec(base_image, command=SLEEP, sudo=sudo))
    pid1 = (await docker_runtime.exec(cid, ["cat", "/proc/1/status"])).output
    own = (await docker_runtime.exec(cid, ["cat", "/proc/self/status"])).output
    expected = cap_mask(BASE_CAPS + (SUDO_CAPS if sudo else []))
    print(f"sudo={sudo}: CapEff of pid 1 = {proc_status_field(pid1, 'CapEff')}")
    assert int(proc_status_field(pid1, "CapEff"), 16) == expected
    assert int(proc_status_field(pid1, "CapBnd"), 16) == expected
    assert int(proc_status_field(own, "CapBnd"), 16) == expected
    assert proc_status_field(own, "NoNewPrivs") == ("0" if sudo else "1")


@pytest.mark.parametrize(
    "source",
    [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run",
        "/var/run",
        "/var",
        "/",
        "/run/",
        "/var/run/../run",
    ],
)
async def test_docker_socket_mount_refused(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory, source: str
):
    spec = make_spec(base_image, command=SLEEP, mounts=[Mount(source, "/mnt/host")])
    with pytest.raises(InvalidInput):
        await docker_runtime.create(spec)
    assert await docker_runtime.inspect(spec.name) is None


async def test_bind_mount_read_only(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory, tmp_path: Path
):
    (tmp_path / "hello.txt").write_text("from the host\n")
    spec = make_spec(
        base_image, command=SLEEP, mounts=[Mount(str(tmp_path), "/data", read_only=True)]
    )
    cid = await running(docker_runtime, spec)
    read = await docker_runtime.exec(cid, ["cat", "/data/hello.txt"])
    assert read.output == "from the host\n"
    write = await docker_runtime.exec(cid, ["touch", "/data/new"])
    assert write.exit_code != 0 and "Read-only" in write.output


CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 8000), timeout=2).close()
except OSError as exc:
    print("blocked:", repr(exc)); sys.exit(1)
print("connected")
"""


async def _host_can_connect(ip: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, 8000), 2)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.5)
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


async def test_workspaces_cannot_reach_each_other(
    docker_runtime: DockerRuntime, jupyter_image: str, make_spec: SpecFactory, test_network: str
):
    await docker_runtime.ensure_network(test_network)  # idempotent
    server = await docker_runtime.create(
        make_spec(
            jupyter_image, command=["python3", "-m", "http.server", "8000"], network=test_network
        )
    )
    client = await docker_runtime.create(
        make_spec(jupyter_image, command=SLEEP, network=test_network)
    )
    server_info, client_info = await asyncio.gather(
        docker_runtime.start(server.id), docker_runtime.start(client.id)
    )
    assert server_info.ip_address and client_info.ip_address
    assert await _host_can_connect(server_info.ip_address, time.monotonic() + 60), (
        "the host cannot reach the server: " + await docker_runtime.logs(server.id)
    )
    sanity = await docker_runtime.exec(client.id, ["python3", "-c", "print('ok')"])
    assert sanity.output.strip() == "ok", sanity
    attempt = await docker_runtime.exec(
        client.id, ["python3", "-c", CONNECT, server_info.ip_address]
    )
    print("workspace -> workspace:", attempt.output.strip())
    assert attempt.exit_code == 1 and "blocked" in attempt.output, attempt


async def test_concurrent_starts(
    docker_runtime: DockerRuntime, base_image: str, make_spec: SpecFactory
):
    """20 create+starts at once beat 20 x one. The client side adds no serialisation; the
    engine's own work (runc, network set-up) is CPU-bound, so the gain is about the number of
    cores (~1.7-2x on a 2-core box)."""
    count = 20

    async def one() -> str:
        return await running(docker_runtime, make_spec(base_image, command=SLEEP))

    singles = []
    for _ in range(3):
        began = time.monotonic()
        await one()
        singles.append(time.monotonic() - began)
    single = sorted(singles)[1]

    began = time.monotonic()
    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    wall = time.monotonic() - began
    failures = [r for r in results if isinstance(r, BaseException)]
    print(
        f"\none create+start: {single:.2f} s; {count} concurrently: {wall:.2f} s "
        f"({count * single / wall:.1f}x faster than {count} x one = {count * single:.2f} s)"
    )
    assert not failures, failures
    ids = [r for r in results if isinstance(r, str)]
    infos = await asyncio.gather(*(docker_runtime.inspect(cid) for cid in ids))
    assert all(info is not None and info.running for info in infos)
    assert wall < count * single * 0.75


USER_ENV = {"LABSPACE_USER": "alice", "LABSPACE_UID": "4321", "LABSPACE_GID": "4321"}

SETGID_CHECK = "f=$(mktemp) && sudo -n chown root:tty $f && sudo -n chmod 2755 $f && stat -c %A $f"


async def _user_session(
    runtime: DockerRuntime, image: str, make_spec: SpecFactory, sudo: bool
) -> str:
    env = {**USER_ENV, "LABSPACE_SUDO": "1" if sudo else "0", "LABSPACE_HOME": "/tmp/alice"}
    cid = await running(runtime, make_spec(image, command=SLEEP, env=env, sudo=sudo))
    for _ in range(100):  # the entrypoint sets up the account, then execs sleep as alice
        if (await runtime.exec(cid, ["pgrep", "-u", "4321", "-x", "sleep"])).exit_code == 0:
            return cid
        await asyncio.sleep(0.1)
    raise AssertionError("entrypoint never dropped to the user:\n" + await runtime.logs(cid))


async def test_sudo_and_apt_work_with_sudo_caps(
    docker_runtime: DockerRuntime, jupyter_image: str, make_spec: SpecFactory
):
    cid = await _user_session(docker_runtime, jupyter_image, make_spec, sudo=True)
    plain = await docker_runtime.exec(cid, ["sudo", "-n", "true"], user="alice")
    assert (plain.exit_code, plain.output) == (0, ""), plain  # no "audit message" warning
    apt = await docker_runtime.exec(cid, ["sudo", "-n", "apt-get", "--version"], user="alice")
    assert apt.exit_code == 0 and apt.output.startswith("apt "), apt
    setgid = await docker_runtime.exec(cid, ["bash", "-c", SETGID_CHECK], user="alice")
    assert setgid.output.strip() == "-rwxr-sr-x", setgid  # FSETID: dpkg keeps setgid bits


async def test_no_sudo_without_sudo_flag(
    docker_runtime: DockerRuntime, jupyter_image: str, make_spec: SpecFactory
):
    cid = await _user_session(docker_runtime, jupyter_image, make_spec, sudo=False)
    attempt = await docker_runtime.exec(cid, ["sudo", "-n", "true"], user="alice")
    assert attempt.exit_code != 0, attempt


async def test_existing_network_with_icc_is_refused(docker_runtime: DockerRuntime):
    name = f"labspace-test-icc-{uuid.uuid4().hex[:8]}"
    network = await docker_runtime.docker.networks.create({"Name": name, "Driver": "bridge"})
    try:
        with pytest.raises(RuntimeFailure, match="inter-container"):
            await docker_runtime.ensure_network(name)
    finally:
        await network.delete()


async def test_concurrent_ensures_make_one_network(docker_runtime: DockerRuntime):
    """The workspace manager and the app pools ensure the network at the same moments (a
    pool starting ten spares): Docker would make ten networks of one name, and every start
    after that fails as "ambiguous"."""
    name = f"labspace-test-race-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.gather(*(docker_runtime.ensure_network(name) for _ in range(8)))
        found = await docker_runtime.docker.networks.list(filters={"name": [name]})
        assert [n["Name"] for n in found] == [name]
    finally:
        for network in await docker_runtime.docker.networks.list(filters={"name": [name]}):
            await (await docker_runtime.docker.networks.get(network["Id"])).delete()


def test_stats_arithmetic_cgroup_v1_and_v2():
    v1 = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300, "percpu_usage": [150, 150]},
            "system_cpu_usage": 2000,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {"usage": 1000, "stats": {"cache": 300, "total_inactive_file": 200}},
    }
    v2 = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300},
            "system_cpu_usage": 2000,
            "online_cpus": 4,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {"usage": 1000, "stats": {"inactive_file": 100}},
    }
    assert cpu_percent(v1) == pytest.approx(40.0)  # 200/1000 of the machine, 2 CPUs
    assert cpu_percent(v2) == pytest.approx(80.0)
    assert cpu_percent({}) == 0.0  # first sample: no precpu yet
    assert memory_usage(v1) == 800
    assert memory_usage(v2) == 900
    assert memory_usage({"memory_stats": {"usage": 5}}) == 5
