"""SSH benchmark: the real OpenSSH client into a real workspace's sshd, through labspace's
tunnel (as `labspace config-ssh` sets it up) and straight to the container's address, in one
run.

    .venv/bin/python bench/ssh.py [--megabytes 500] [--pings 300] [--connects 5] [--rounds 3]

Starts a labspace (labspace.testing.Stack: hub, proxy, a JupyterLab workspace with its
sshd) and prints, each as the median of rounds:
- throughput of `cat > /dev/null` fed MEGABYTES (MB/s), direct and tunnelled, and the ratio
  (target >= 0.7x);
- the round trip of one byte through a remote `cat` in an open session (ms), direct and
  tunnelled, and what the tunnel adds (target <= 1 ms);
- the time of a whole `ssh host true` (ms): direct, through the tunnel's fast start
  (labspace.cli.entry) and through the full CLI (labspace.cli.main), the baseline it saves.
Everything is bounded by timeouts; the stack and its containers are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from labspace.testing import Stack


def _ssh_base(key: Path, known: Path) -> list[str]:
    return ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-l", "alice"]


def throughput(cmd: list[str], megabytes: int) -> float:
    total = megabytes * 1024 * 1024
    started = time.perf_counter()
    feeder = subprocess.Popen(["head", "-c", str(total), "/dev/zero"], stdout=subprocess.PIPE)
    done = subprocess.run([*cmd, "wc -c"], stdin=feeder.stdout, capture_output=True,
                          text=True, timeout=600, check=True)
    feeder.wait(timeout=10)
    elapsed = time.perf_counter() - started
    assert int(done.stdout.split()[0]) == total, done.stdout
    return megabytes / elapsed


def round_trip(cmd: list[str], pings: int) -> float:
    session = subprocess.Popen([*cmd, "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert session.stdin is not None and session.stdout is not None
    try:
        times = []
        for _ in range(pings + 10):
            started = time.perf_counter()
            session.stdin.write(b"x")
            session.stdin.flush()
            assert session.stdout.read(1) == b"x"
            times.append(time.perf_counter() - started)
        return statistics.median(times[10:]) * 1000  # the first ones warm up
    finally:
        session.stdin.close()
        session.wait(timeout=30)


def connect_time(cmd: list[str], count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run([*cmd, "true"], check=True, timeout=60, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def set_up(stack: Stack, root: Path) -> tuple[str, str, Path]:
    with stack.client() as admin:
        admin.post("/hub/api/users", json={"name": "alice", "password": "bench-wonderland-7"})
        token = admin.post("/hub/api/users/alice/tokens", json={"note": "bench"}).json()["token"]
    key = root / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as alice:
        alice.post("/hub/api/keys", json={"public_key": Path(f"{key}.pub").read_text()})
        alice.post("/hub/api/workspaces", json={"name": "bench", "template": "jupyterlab"})
        deadline = time.monotonic() + 180
        while alice.get("/hub/api/workspaces/alice/bench").json()["state"] != "running":
            assert time.monotonic() < deadline, "the workspace did not start"
            time.sleep(0.5)
    container = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labspace.instance={stack.instance}"],
        capture_output=True, text=True, check=True).stdout.split()[0]
    address = json.loads(subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
    )[0]["NetworkSettings"]["Networks"]
    ip = next(iter(address.values()))["IPAddress"]
    return token, ip, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--connects", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="labspace-bench-ssh-"))
    stack = Stack(root)
    stack.start()
    try:
        token, ip, key = set_up(stack, root)
        base = _ssh_base(key, root / "known_hosts")
        env_cmd = ["env", f"LABSPACE_TOKEN={token}", f"XDG_CONFIG_HOME={root}"]

        def tunnelled(module: str) -> list[str]:
            proxy = " ".join([*env_cmd, sys.executable, "-m", module, "tunnel", "alice/bench",
                              "--url", stack.url])
            return [*base, "-o", f"ProxyCommand={proxy}", "labspace.bench"]

        direct = [*base, ip]
        quick, full = tunnelled("labspace.cli.entry"), tunnelled("labspace.cli.main")
        rates: dict[str, list[float]] = {"direct": [], "tunnel": []}
        rtts: dict[str, list[float]] = {"direct": [], "tunnel": []}
        connects: dict[str, list[float]] = {"direct": [], "quick": [], "full": []}
        for number in range(1, args.rounds + 1):
            for name, cmd in (("direct", direct), ("tunnel", quick)):
                rates[name].append(throughput(cmd, args.megabytes))
                rtts[name].append(round_trip(cmd, args.pings))
            for name, cmd in (("direct", direct), ("quick", quick), ("full", full)):
                connects[name].append(connect_time(cmd, args.connects))
            print(f"round {number}: " + ", ".join(
                f"{name} {values[-1]:.0f} MB/s" for name, values in rates.items()), flush=True)
        med = {name: statistics.median(v) for name, v in rates.items()}
        rtt = {name: statistics.median(v) for name, v in rtts.items()}
        con = {name: statistics.median(v) for name, v in connects.items()}
        print(f"\nthroughput ({args.megabytes} MB, median of {args.rounds}): direct "
              f"{med['direct']:.0f} MB/s, tunnel {med['tunnel']:.0f} MB/s, ratio "
              f"{med['tunnel'] / med['direct']:.2f}x (target >= 0.7x)")
        print(f"echo round trip (median of {args.pings}): direct {rtt['direct']:.3f} ms, tunnel "
              f"{rtt['tunnel']:.3f} ms, added {rtt['tunnel'] - rtt['direct']:.3f} ms "
              "(target <= 1 ms)")
        print(f"`ssh host true` (median): direct {con['direct']:.0f} ms, tunnel "
              f"{con['quick']:.0f} ms with the fast start, {con['full']:.0f} ms through the full "
              f"CLI ({con['full'] / con['quick']:.2f}x)")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
