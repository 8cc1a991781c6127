"""Seconds from `docker run` of the JupyterLab image to GET <base_url>api/status answering 200.

Runs the image the way labspace does (LABSPACE_* environment, JUPYTER_TOKEN, the template
command from labspace.templates.builtin, the sudo capability set), polls the container's
address on the bridge network, and prints the median and p90 over --runs runs.

    .venv/bin/python bench/image_start.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from labspace.templates.builtin import JUPYTERLAB_COMMAND

CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL", "AUDIT_WRITE", "FSETID"]
UID = GID = 34567
USER = "bench"


def _status(url: str, secret: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"token {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def one_run(image: str, timeout: float, poll: float) -> float:
    secret = secrets.token_urlsafe(24)
    home = f"/home/{USER}"
    base_url = f"/user/{USER}/bench/"
    command = [p.format(port=8888, base_url=base_url, home=home, user=USER, uid=UID, gid=GID,
                        workspace="bench", secret=secret) for p in JUPYTERLAB_COMMAND]
    name = f"labspace-bench-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="labspace-bench.") as tmp:
        os.chown(tmp, UID, GID)
        os.chmod(tmp, 0o700)
        args = ["docker", "run", "-d", "--name", name, "--cap-drop", "ALL"]
        for cap in CAPS:
            args += ["--cap-add", cap]
        env = {"LABSPACE_USER": USER, "LABSPACE_UID": str(UID), "LABSPACE_GID": str(GID),
               "LABSPACE_HOME": home, "LABSPACE_SUDO": "1", "JUPYTER_TOKEN": secret}
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args += ["-v", f"{tmp}:{home}", image, *command]
        started = time.monotonic()
        try:
            subprocess.run(args, check=True, capture_output=True, timeout=60)
            address = subprocess.run(
                ["docker", "inspect", "-f",
                 "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
                check=True, capture_output=True, text=True, timeout=30,
            ).stdout.strip()
            url = f"http://{address}:8888{base_url}api/status"
            while time.monotonic() - started < timeout:
                if _status(url, secret) == 200:
                    return time.monotonic() - started
                time.sleep(poll)
            raise SystemExit(f"not ready within {timeout} s: {url}")
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="labspace/jupyterlab:latest")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    times = []
    for index in range(args.runs):
        seconds = one_run(args.image, args.timeout, args.poll)
        times.append(seconds)
        print(f"run {index + 1}: {seconds:.2f} s", flush=True)
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered) + 0.5) - 1))]
    print(f"median {statistics.median(times):.2f} s  p90 {p90:.2f} s  "
          f"min {ordered[0]:.2f} s  max {ordered[-1]:.2f} s  (n={len(times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
