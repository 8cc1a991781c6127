"""Real-container tests of the JupyterLab image and its entrypoint (docker CLI, no SDK).

Capability sets are the ones labspace runs workspaces with: a small base set for everyone,
plus AUDIT_WRITE and FSETID (and no no-new-privileges) for templates with sudo.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from labspace.images import build
from labspace.templates.builtin import JUPYTERLAB_COMMAND

pytestmark = pytest.mark.docker

IMAGE = "labspace/jupyterlab:latest"
UID = 23456
GID = 23457
USER = "alice"
HOME = f"/home/{USER}"

BASE_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"]
SUDO_CAPS = [*BASE_CAPS, "AUDIT_WRITE", "FSETID"]


def _docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@pytest.fixture(scope="module", autouse=True)
def _image() -> None:
    if not _docker_ok():
        pytest.skip("no Docker engine (run scripts/ensure-docker.sh)")
    if not build.image_present(IMAGE):
        pytest.fail(f"{IMAGE} is missing: run python -m labspace.images.build")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    os.chown(path, UID, GID)
    path.chmod(0o700)
    return path


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Container names a test creates; all removed afterwards."""
    created: list[str] = []
    yield created
    for name in created:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def _run_args(home: Path | None, *, sudo: bool, env: dict[str, str] | None = None) -> list[str]:
    args = ["--cap-drop", "ALL"]
    for cap in SUDO_CAPS if sudo else BASE_CAPS:
        args += ["--cap-add", cap]
    if not sudo:
        args += ["--security-opt", "no-new-privileges"]
    values = {
        "LABSPACE_USER": USER,
        "LABSPACE_UID": str(UID),
        "LABSPACE_GID": str(GID),
        "LABSPACE_HOME": HOME,
        "LABSPACE_SUDO": "1" if sudo else "0",
        **(env or {}),
    }
    for key, value in values.items():
        args += ["-e", f"{key}={value}"]
    if home is not None:
        args += ["-v", f"{home}:{HOME}"]
    return args


def _run(
    home: Path | None, script: str, *, sudo: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", *_run_args(home, sudo=sudo, env=env), IMAGE, "sh", "-c", script],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_user_ids_home_and_environment(home: Path) -> None:
    done = _run(home, 'id -u; id -g; id -un; pwd; echo "$HOME $USER $SHELL"; '
                      'stat -c "%a %u %g" "$HOME"; ls -A "$HOME"')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:6] == [str(UID), str(GID), USER, HOME, f"{HOME} {USER} /bin/bash",
                         f"700 {UID} {GID}"]
    assert ".bashrc" in lines[6:]  # an empty home gets /etc/skel
    bashrc = home / ".bashrc"
    assert (bashrc.stat().st_uid, bashrc.stat().st_gid) == (UID, GID)


def test_skel_only_into_an_empty_home(home: Path) -> None:
    mine = home / "notes.txt"
    mine.write_text("mine\n")
    os.chown(mine, UID, GID)
    done = _run(home, "ls -A")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["notes.txt"]


def test_supplementary_groups_are_the_directorys_exactly(home: Path) -> None:
    """New gids are made with the directory's names; a gid the image has keeps its name; a
    name the image uses for another gid becomes labspace-<gid>; files made with the group's
    gid carry it."""
    done = _run(home, "id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' '; echo; "
                      "getent group 6001 6002 100 | cut -d: -f1,4 | tr '\\n' ' '; echo; "
                      "mkdir /tmp/d && chgrp phd /tmp/d && chmod 2770 /tmp/d && "
                      "touch /tmp/d/f && stat -c %g /tmp/d/f",
                env={"LABSPACE_GROUPS": "phd:6001,root:6002,users:100"})
    assert done.returncode == 0, done.stderr
    ids, groups, made = done.stdout.splitlines()
    assert ids.split() == [str(g) for g in sorted([GID, 100, 6001, 6002])]
    assert groups.split() == [f"phd:{USER}", f"labspace-6002:{USER}", f"users:{USER}"]
    assert made == "6001"


@pytest.mark.parametrize("groups", ["sudo:27", "x:0", "a:b", "we;rd:6000", "-x:6000"])
def test_a_system_or_malformed_group_is_refused(home: Path, groups: str) -> None:
    done = _run(home, "id", env={"LABSPACE_GROUPS": groups})
    assert done.returncode != 0 and "LABSPACE_GROUPS" in done.stderr


def test_a_new_home_links_the_labs_shared_folder(home: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    done = subprocess.run(
        ["docker", "run", "--rm", *_run_args(home, sudo=False), "-v", f"{shared}:/shared",
         IMAGE, "sh", "-c", "readlink ~/shared"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "/shared"


def test_missing_home_is_created_for_the_user() -> None:
    done = _run(None, 'stat -c "%a %u %g" "$HOME"; touch "$HOME/x" && echo writable')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"700 {UID} {GID}", "writable"]


def test_sudo_granted_with_the_sudo_capability_set(home: Path) -> None:
    done = _run(home, "sudo -n id -u && sudo -n test -r /etc/shadow && echo ok", sudo=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "ok"]
    assert "audit" not in done.stderr  # AUDIT_WRITE present: no warning on every call


def test_sudo_refused_without_sudo(home: Path) -> None:
    done = _run(home, "sudo -n true", sudo=False)
    assert done.returncode != 0
    assert "no new privileges" in done.stderr
    # Even without no-new-privileges there is no sudoers entry for the user.
    args = [a for a in _run_args(home, sudo=False) if a not in ("--security-opt",
                                                                  "no-new-privileges")]
    done = subprocess.run(
        ["docker", "run", "--rm", *args, IMAGE, "sh", "-c",
         "test ! -e /etc/sudoers.d/labspace-user && sudo -n true"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode != 0
    assert "password is required" in done.stderr


def test_setgid_bits_survive_for_package_installs(home: Path) -> None:
    # dpkg sets setgid on files of other groups (e.g. shadow); that needs FSETID.
    done = _run(home, 'sudo -n sh -c "touch /tmp/f; chgrp shadow /tmp/f; chmod 2755 /tmp/f; '
                      'stat -c %A /tmp/f"', sudo=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "-rwxr-sr-x"


def test_restart_is_idempotent(home: Path, names: list[str]) -> None:
    name = f"labspace-test-entrypoint-{secrets.token_hex(4)}"
    names.append(name)
    script = "id -u; ls -A | sort | tr '\\n' ' '; echo; sudo -n id -u"
    created = subprocess.run(
        ["docker", "create", "--name", name, *_run_args(home, sudo=True), IMAGE,
         "sh", "-c", script],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert created.returncode == 0, created.stderr
    outputs = []
    for _ in range(2):
        started = subprocess.run(["docker", "start", "-a", name], capture_output=True,
                                 text=True, timeout=120, check=False)
        assert started.returncode == 0, started.stderr
        outputs.append(started.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0] == str(UID)
    assert outputs[0].splitlines()[-1] == "0"


def test_plain_run_without_labspace_user() -> None:
    done = subprocess.run(["docker", "run", "--rm", IMAGE, "id", "-u"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def _status(url: str, token: str | None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_jupyterlab_template_command_serves_status(home: Path, names: list[str]) -> None:
    secret = secrets.token_urlsafe(16)
    base_url = f"/user/{USER}/lab/"
    command = [part.format(port=8888, base_url=base_url, home=HOME) for part in
               JUPYTERLAB_COMMAND]
    name = f"labspace-test-jupyter-{secrets.token_hex(4)}"
    names.append(name)
    started = subprocess.run(
        ["docker", "run", "-d", "--name", name,
         *_run_args(home, sudo=True, env={"JUPYTER_TOKEN": secret}), IMAGE, *command],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert started.returncode == 0, started.stderr
    address = subprocess.run(
        ["docker", "inspect", "-f",
         "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    assert address
    url = f"http://{address}:8888{base_url}api/status"
    deadline = time.monotonic() + 60
    code = 0
    while time.monotonic() < deadline:
        try:
            code = _status(url, secret)
        except OSError:
            code = 0
        if code == 200:
            break
        time.sleep(0.2)
    logs = subprocess.run(["docker", "logs", "--tail", "30", name], capture_output=True,
                          text=True, timeout=30, check=False)
    assert code == 200, logs.stdout + logs.stderr
    assert _status(url, None) in (401, 403)
    assert _status(url, "wrong") in (401, 403)


def test_build_cache_reports_image_up_to_date() -> None:
    assert build.image_present(IMAGE)
    assert build.image_label(IMAGE) == build.image_hash("jupyterlab")
    assert build.image_up_to_date(IMAGE)
    before = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    lines: list[str] = []
    started = time.monotonic()
    assert build.build_image("jupyterlab", progress=lines.append) == IMAGE
    assert time.monotonic() - started < 10
    assert any("up to date" in line for line in lines), lines
    after = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert before == after
    assert not build.image_present("labspace/no-such-image:never")


def test_a_build_under_another_tag_goes_through_the_engine_api_and_its_cache() -> None:
    """The build talks to the engine through the runtime's client: the same layers as the
    image already built, whole lines of output, and the labels that make it up to date."""
    tag = "labspace/jupyterlab:test-rebuild"
    lines: list[str] = []
    try:
        assert build.build_image("jupyterlab", tag=tag, progress=lines.append) == tag
        assert build.image_up_to_date(tag)
        ids = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE, tag],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert len(set(ids.split())) == 1, ids  # every layer came from the cache
        assert any(line.startswith("Step 1/") for line in lines), lines
        assert "" not in lines  # no line broken in two
    finally:
        subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)
