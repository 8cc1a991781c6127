"""SSH into a workspace as a laptop does it, end to end with real components: `labspace
login` approved in a logged-in browser session, `labspace config-ssh`, then the real OpenSSH
client by name through the tunnel to the workspace's own sshd: a command, a pty, scp both
ways, sftp, rsync, ssh -L; and the refusals: another user's token, a removed key, a logged
out computer. A stopped workspace ends an open session.

The laptop is a subprocess with its own HOME and XDG_CONFIG_HOME and no server settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from labspace.testing import Stack, free_port
from tests.conftest import Person, ensure_running, wait_state

pytestmark = pytest.mark.docker
WORKSPACE = "sshws"
ALIAS = f"labspace.{WORKSPACE}"


@dataclass
class Laptop:
    home: Path
    url: str
    env: dict[str, str]

    @property
    def ssh_config(self) -> Path:
        return self.home / ".ssh" / "config"

    def cli(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "labspace.cli.main", *args],
                              env={**self.env, **env}, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def ssh(self, *args: str, program: str = "ssh", timeout: float = 120, **env: str
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([program, "-F", str(self.ssh_config), *args],
                              env={**self.env, **env}, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)


def _approve_in_browser(person: Person, code: str) -> None:
    """What the user does in the browser where they are logged in."""
    with contextlib.closing(person.browser()) as browser:  # open already: it logged in
        page = browser.get(f"/hub/cli-login?code={code}")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf, page.text
        shown = browser.post("/hub/cli-login", data={"code": code, "decision": "continue",
                                                     "_csrf": csrf.group(1)})
        assert "asks to act as" in shown.text and code in shown.text, shown.text
        done = browser.post("/hub/cli-login", data={"code": code, "decision": "approve",
                                                    "_csrf": csrf.group(1)})
        assert "is logged in as" in done.text, done.text


def _log_in(laptop: Laptop, person: Person) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "labspace.cli.main", "login", laptop.url, "--no-browser"],
        env=laptop.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen, deadline = "", time.monotonic() + 30
    code = None
    while code is None and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 1)
        if ready:
            seen += process.stderr.readline()  # its first line names the code
        code = re.search(r"the code ([A-Z]{4}-[A-Z]{4})", seen)
    assert code, seen
    _approve_in_browser(person, code.group(1))
    _out, rest = process.communicate(timeout=60)
    assert process.returncode == 0, seen + rest
    assert "Logged in to" in rest


@pytest.fixture(scope="module")
def laptop(stack: Stack, people: dict[str, Person], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Laptop]:
    ensure_running(people["alice"], WORKSPACE)
    home = tmp_path_factory.mktemp("laptop")
    env = {"PATH": os.environ["PATH"], "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "LANG": "C.UTF-8"}
    machine = Laptop(home, stack.url, env)
    _log_in(machine, people["alice"])
    machine.ssh_config.parent.mkdir(mode=0o700, exist_ok=True)
    machine.ssh_config.write_text("Host mine\n    HostName example.invalid\n")
    written = machine.cli("config-ssh", "--ssh-config", str(machine.ssh_config))
    assert f"ssh {ALIAS}" in written.stdout
    yield machine


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_login_keeps_a_private_token_and_registers_a_key_of_its_own(
        laptop: Laptop, people: dict[str, Person]) -> None:
    saved = laptop.home / ".config" / "labspace" / "login.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    with people["alice"].api() as api:
        names = [k["name"] for k in api.get("/hub/api/keys").json()]
    assert any(name.startswith("labspace CLI on ") for name in names)


def test_config_ssh_keeps_the_users_entries_and_is_idempotent(laptop: Laptop) -> None:
    before = laptop.ssh_config.read_text()
    again = laptop.cli("config-ssh", "--ssh-config", str(laptop.ssh_config))
    assert "unchanged" in again.stderr
    assert laptop.ssh_config.read_text() == before
    assert before.count("# --- BEGIN labspace") == 1 and "Host mine\n" in before
    assert f"Host {ALIAS}\n    User alice\n" in before
    assert laptop.ssh_config.stat().st_mode & 0o022 == 0  # ssh refuses a writable config


def test_a_command_by_name_with_no_host_key_prompt(laptop: Laptop) -> None:
    done = laptop.ssh(ALIAS, "id -un; hostname; echo $HOME")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["alice", WORKSPACE, "/home/alice"]
    assert "Warning" not in done.stderr  # the host key was known: nothing was added


def test_an_interactive_session_gets_a_pty(laptop: Laptop) -> None:
    # script gives ssh a terminal of its own, as a person at a terminal has
    inner = f"ssh -F {laptop.ssh_config} -tt {ALIAS} 'tty; echo cols=$(tput cols 2>/dev/null)'"
    done = subprocess.run(["script", "-qec", inner, "/dev/null"], env=laptop.env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"/dev/pts/\d+", done.stdout), done.stdout


def test_scp_sftp_and_rsync_carry_files_both_ways_intact(laptop: Laptop,
                                                         tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(3 * 1024 * 1024))
    up = laptop.ssh(str(data), f"{ALIAS}:data.bin", program="scp")
    assert up.returncode == 0, up.stderr
    remote = laptop.ssh(ALIAS, "sha256sum data.bin").stdout.split()[0]
    assert remote == _sha(data)
    back = tmp_path / "back.bin"
    down = laptop.ssh(f"{ALIAS}:data.bin", str(back), program="scp")
    assert down.returncode == 0 and _sha(back) == _sha(data)
    batch = tmp_path / "batch"
    batch.write_text(f"put {data} via-sftp.bin\nls -l via-sftp.bin\n")
    sftp = laptop.ssh("-b", str(batch), ALIAS, program="sftp")
    assert sftp.returncode == 0 and "via-sftp.bin" in sftp.stdout, sftp.stderr
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("alpha\n")
    shutil.copy(data, tree / "b.bin")
    synced = subprocess.run(["rsync", "-a", "-e", f"ssh -F {laptop.ssh_config}", f"{tree}/",
                             f"{ALIAS}:tree/"], env=laptop.env, capture_output=True, text=True,
                            timeout=120)
    assert synced.returncode == 0, synced.stderr
    listed = laptop.ssh(ALIAS, "cat tree/sub/a.txt; sha256sum tree/b.bin").stdout.split()
    assert listed[:2] == ["alpha", _sha(data)]


def test_ssh_local_forward_reaches_a_service_in_the_workspace(laptop: Laptop) -> None:
    port = free_port()
    forward = subprocess.Popen(
        ["ssh", "-F", str(laptop.ssh_config), "-N", "-o", "ExitOnForwardFailure=yes",
         "-L", f"127.0.0.1:{port}:127.0.0.1:8888", ALIAS],
        env=laptop.env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/user/alice/{WORKSPACE}/api",
                                   timeout=5)
            except httpx.TransportError:
                time.sleep(0.3)
        assert answer is not None and answer.status_code == 200, answer
        assert "version" in answer.json()  # JupyterLab's own answer, from inside
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_labspace_ssh_runs_a_command_with_no_ssh_config_at_all(laptop: Laptop) -> None:
    done = laptop.cli("ssh", WORKSPACE, "echo", "via", "labspace", "ssh")
    assert done.stdout.split() == ["via", "labspace", "ssh"]
    with_option = laptop.cli("ssh", WORKSPACE, "-o", "LogLevel=ERROR", "hostname")
    assert with_option.stdout.strip() == WORKSPACE


def test_another_users_token_opens_no_tunnel(laptop: Laptop, people: dict[str, Person]
                                             ) -> None:
    done = laptop.ssh(ALIAS, "true", LABSPACE_TOKEN=people["bob"].token)
    assert done.returncode == 255
    assert "owner" in done.stderr, done.stderr


def test_logging_in_again_reuses_the_key_and_ends_the_old_token(
        laptop: Laptop, people: dict[str, Person]) -> None:
    saved = laptop.home / ".config" / "labspace" / "login.json"
    old_token = json.loads(saved.read_text())["token"]
    _log_in(laptop, people["alice"])
    with people["alice"].api() as api:
        names = [k["name"] for k in api.get("/hub/api/keys").json()]
    assert sum(name.startswith("labspace CLI on ") for name in names) == 1
    with laptop_client(laptop, old_token) as old:
        assert old.get("/hub/api/me").status_code == 401
    assert laptop.ssh(ALIAS, "true").returncode == 0


def laptop_client(laptop: Laptop, token: str) -> httpx.Client:
    return httpx.Client(base_url=laptop.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def test_a_removed_key_is_refused_at_once_and_a_readded_one_works(laptop: Laptop) -> None:
    keys = json.loads(laptop.cli("key", "list", "--json").stdout)
    mine = [k for k in keys if k["name"].startswith("labspace CLI")]
    laptop.cli("key", "remove", str(mine[0]["id"]))
    refused = laptop.ssh(ALIAS, "true")
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    public = laptop.home / ".config" / "labspace" / "id_ed25519.pub"
    laptop.cli("key", "add", str(public), "--name", "again")
    assert laptop.ssh(ALIAS, "true").returncode == 0  # no restart of the workspace


def test_a_stopped_workspace_ends_an_open_session(laptop: Laptop,
                                                  people: dict[str, Person]) -> None:
    session = subprocess.Popen(["ssh", "-F", str(laptop.ssh_config), ALIAS, "echo up; sleep 600"],
                               env=laptop.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert session.stdout is not None and session.stdout.readline().strip() == "up"
        with people["alice"].api() as api:
            api.post(f"/hub/api/workspaces/alice/{WORKSPACE}/stop")
            wait_state(api, "alice", WORKSPACE, {"stopped"})
        session.wait(timeout=30)
        assert session.returncode != 0
    finally:
        if session.poll() is None:
            session.kill()
    started = laptop.cli("ssh", WORKSPACE, "echo", "back")  # starts it first, then connects
    assert started.stdout.strip() == "back" and f"starting alice/{WORKSPACE}" in started.stderr
    ensure_running(people["alice"], WORKSPACE)


def test_logout_ends_the_token_and_the_key(laptop: Laptop, people: dict[str, Person]) -> None:
    laptop.cli("logout")
    assert not (laptop.home / ".config" / "labspace" / "login.json").exists()
    with people["alice"].api() as api:
        names = [k["name"] for k in api.get("/hub/api/keys").json()]
    assert not any(name.startswith("labspace CLI on ") for name in names)
    refused = laptop.ssh(ALIAS, "true")
    assert refused.returncode == 255  # the tunnel refuses before any SSH is spoken
