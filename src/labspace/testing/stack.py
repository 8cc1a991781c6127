"""A real labspace (proxy + hub processes) on loopback, for tests and benchmarks.

It uses the real Docker engine with a unique ``instance`` label, so it never touches
containers of another installation, and removes everything it created on close.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from labspace.runtime.base import LABEL_INSTANCE
from labspace.runtime.hostfirewall import release_commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers over HTTP; RuntimeError with the end of ``log`` if ``process``
    exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} process exited:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def remove_network(name: str) -> None:
    """Remove a workspaces' network and the host firewall rules labspace added for it."""
    found = subprocess.run(["docker", "network", "inspect", "-f", "{{.Id}}", name],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        return
    bridge = "br-" + found.stdout.strip()[:12]
    for command in release_commands(bridge):
        subprocess.run(["iptables", "-w", "10", *command], capture_output=True, check=False)
    subprocess.run(["docker", "network", "rm", name], capture_output=True, check=False)


def instance_containers(instance: str) -> list[str]:
    """Ids of every container (running or not) labelled with this labspace instance."""
    result = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL_INSTANCE}={instance}"],
        capture_output=True, text=True, check=True,
    )
    return result.stdout.split()


def remove_instance(instance: str, network: str) -> None:
    """Remove everything a test installation left in the engine: its containers, its
    network and the host firewall rules for that network."""
    ids = instance_containers(instance)
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
    remove_network(network)


class LocalBrowser(httpx.Client):
    """An HTTP client that keeps cookies as a browser does on a local address: Secure ones
    too, over plain HTTP (browsers treat localhost as secure; Python's cookie jar does not,
    and httpx rebuilds its jar per request, so a policy cannot be slipped in). Paths and
    expiry are ignored: enough for a test's few cookies."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        self.kept: dict[str, str] = {}
        super().__init__(base_url=base_url, event_hooks={
            "request": [self._send_cookies], "response": [self._keep_cookies]}, **kwargs)

    def _send_cookies(self, request: httpx.Request) -> None:
        if self.kept:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.kept.items())

    def _keep_cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower().replace(" ", "") or not value.strip('"'):
                self.kept.pop(name.strip(), None)
            else:
                self.kept[name.strip()] = value


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in as a browser does: fetch the form (its nonce and cookie), then post it. Like a
    browser, the client then sends its page's ``Origin`` with every request."""
    client.headers["Origin"] = str(client.base_url).rstrip("/")
    form = client.get("/hub/login", headers={"Accept": "text/html"})
    match = re.search(r'name="_login" value="([^"]+)"', form.text)
    nonce = match.group(1) if match else ""
    return client.post("/hub/login", data={"username": username, "password": password,
                                           "_login": nonce})


def _kill(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        process.wait(timeout=30)


@dataclass
class Stack:
    root: Path
    instance: str = field(default_factory=lambda: "t" + secrets.token_hex(4))
    extra_env: dict[str, str] = field(default_factory=dict)
    public_port: int = field(default_factory=free_port)
    hub_port: int = field(default_factory=free_port)
    admin_token: str = ""
    admin_password: str = ""
    hub_process: subprocess.Popen[bytes] | None = None
    proxy_process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            LABSPACE_DATA_DIR=str(self.data_dir),
            LABSPACE_PUBLIC_HOST="127.0.0.1",
            LABSPACE_PUBLIC_PORT=str(self.public_port),
            LABSPACE_HUB_PORT=str(self.hub_port),
            LABSPACE_INSTANCE=self.instance,
            LABSPACE_DOCKER_NETWORK=f"labspace-{self.instance}",
            LABSPACE_PUBLIC_URL=self.url,
            LABSPACE_CONFIG=str(self.root / "none.toml"),
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labspace.cli.main", *args], env=self.env, text=True,
            capture_output=True, check=check, stdin=subprocess.DEVNULL, timeout=300,
        )

    def start(self) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = self.cli("init").stdout
        for line in out.splitlines():
            if line.startswith("admin password:"):
                self.admin_password = line.split(":", 1)[1].split()[0]
        self.admin_token = (self.data_dir / "admin-token").read_text().strip()
        self.start_proxy()
        self.start_hub()
        return self

    def _spawn(self, what: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{what}.log"
        handle = open(log, "ab")  # noqa: SIM115 - the child owns it
        return subprocess.Popen(
            [sys.executable, "-m", "labspace.cli.main", what], env=self.env,
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def start_hub(self) -> None:
        self.hub_process = self._spawn("hub")
        wait_http(f"http://127.0.0.1:{self.hub_port}/hub/api/", 60, self.hub_process,
                   self.root / "hub.log")

    def start_proxy(self) -> None:
        self.proxy_process = self._spawn("proxy")
        wait_http(f"{self.url}/_labspace/proxy/health", 30, self.proxy_process,
                   self.root / "proxy.log")

    def kill_hub(self, sig: int = signal.SIGKILL) -> None:
        _kill(self.hub_process, sig)

    def kill_proxy(self, sig: int = signal.SIGKILL) -> None:
        _kill(self.proxy_process, sig)

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kwargs)  # type: ignore[arg-type]

    def containers(self) -> list[str]:
        return instance_containers(self.instance)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.root.glob("*.log"))
        )

    def close(self) -> None:
        for process in (self.hub_process, self.proxy_process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        remove_instance(self.instance, f"labspace-{self.instance}")
        shutil.rmtree(self.root, ignore_errors=True)
