"""Nobody reaches another user's workspace: not by UI, API, URL, nor over the container network;
and the container's port is useless without the proxy's secret."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.conftest import Person, ensure_running
from tests.workspaces.test_lifecycle import container_name, in_container

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def alice_running(people: dict[str, Person]) -> str:
    alice = people["alice"]
    ensure_running(alice, "iso")
    return "iso"


def connects_from(person: Person, workspace: str, host: str, port: int) -> bool:
    """Whether a TCP connection from inside the workspace (as its user) reaches host:port."""
    probe = (
        "import socket\n"
        "s = socket.socket(); s.settimeout(2)\n"
        f"try:\n    s.connect(('{host}', {port})); print('REACHED')\n"
        "except OSError as e:\n    print('BLOCKED', e)\n"
    )
    result = in_container(person, workspace, "python3", "-c", probe, user=person.name)
    assert "REACHED" in result.stdout or "BLOCKED" in result.stdout, result.stderr
    return "REACHED" in result.stdout


def container_ip(person: Person, workspace: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
         container_name(person, workspace)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_other_user_is_denied_everywhere(people: dict[str, Person], alice_running: str) -> None:
    bob = people["bob"]
    path = f"/user/alice/{alice_running}/api/status"
    with bob.api() as api:
        assert api.get(path).status_code == 403
        # The same answer for a workspace that does not exist: nothing is revealed.
        assert api.get("/user/alice/no-such-ws/api/status").status_code == 403
        assert api.get(f"/hub/api/workspaces/alice/{alice_running}").status_code == 404
        assert api.post(f"/hub/api/workspaces/alice/{alice_running}/stop").status_code == 404
        assert api.delete(f"/hub/api/workspaces/alice/{alice_running}").status_code == 404
        assert api.get(f"/hub/api/workspaces/alice/{alice_running}/logs").status_code == 404
        mine = api.get("/hub/api/workspaces").json()
        assert all(ws["owner"] == "bob" for ws in mine)
        assert api.get("/hub/api/workspaces", params={"all": True}).status_code == 403
        assert api.get("/hub/api/users").status_code == 403
    browser = bob.browser()
    assert browser.get(path).status_code == 403
    page = browser.get(f"/hub/workspaces/alice/{alice_running}")
    assert page.status_code == 404
    with people["alice"].api() as api:
        assert api.get(f"/hub/api/workspaces/alice/{alice_running}").json()["state"] == "running"


def test_anonymous_is_sent_to_login(stack_url: str, alice_running: str) -> None:
    path = f"/user/alice/{alice_running}/lab"
    api = httpx.get(stack_url + path)
    assert api.status_code == 401
    browser = httpx.get(stack_url + path, headers={"Accept": "text/html"})
    assert browser.status_code == 302
    assert browser.headers["location"].startswith("/hub/login?next=")
    forged = httpx.get(stack_url + path, cookies={"labspace-session": "lsp_forged"})
    assert forged.status_code == 401


def test_admin_may_open_any_workspace(people: dict[str, Person], alice_running: str) -> None:
    with people["admin"].api() as api:
        assert api.get(f"/user/alice/{alice_running}/api/status").status_code == 200


def test_container_port_is_useless_without_the_secret(
    people: dict[str, Person], alice_running: str
) -> None:
    ip = container_ip(people["alice"], alice_running)
    direct = httpx.get(f"http://{ip}:8888/user/alice/{alice_running}/api/contents")
    assert direct.status_code in (401, 403)
    with_user_token = httpx.get(
        f"http://{ip}:8888/user/alice/{alice_running}/api/contents",
        headers={"Authorization": f"Bearer {people['alice'].token}"},
    )
    assert with_user_token.status_code in (401, 403)


def test_workspace_cannot_reach_another_workspace(people: dict[str, Person],
                                                  alice_running: str) -> None:
    bob = people["bob"]
    ensure_running(bob, "probe")
    target = container_ip(people["alice"], alice_running)
    assert not connects_from(bob, "probe", target, 8888)
    # ... while the host (the proxy's side) reaches it.
    assert httpx.get(f"http://{target}:8888/user/alice/{alice_running}/api/status",
                     timeout=5).status_code in (200, 401, 403)


def test_workspace_cannot_reach_the_docker_socket(people: dict[str, Person],
                                                  alice_running: str) -> None:
    alice = people["alice"]
    for path in ("/var/run/docker.sock", "/run/docker.sock"):
        assert in_container(alice, alice_running, "test", "-e", path).returncode != 0
    mounts = subprocess.run(
        ["docker", "inspect", "-f", "{{json .Mounts}}", container_name(alice, alice_running)],
        capture_output=True, text=True, check=True).stdout
    assert "docker.sock" not in mounts


def test_workspace_cannot_reach_the_host(stack_url: str, people: dict[str, Person],
                                         alice_running: str) -> None:
    import socket
    import threading

    network = f"labspace-{people['alice'].stack.instance}"
    gateway = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network],
        capture_output=True, text=True, check=True).stdout.strip()
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # a host service listening on every interface
    listener.listen()
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    try:
        with socket.create_connection((gateway, port), timeout=2):
            pass  # the host itself reaches it: the service is there
        assert not connects_from(people["alice"], alice_running, gateway, port)
    finally:
        listener.close()
    # The public port stays open to workspaces (labspace's own URL works from inside).
    bridge = "br-" + subprocess.run(["docker", "network", "inspect", "-f", "{{.Id}}", network],
                                    capture_output=True, text=True, check=True).stdout[:12]
    chain = subprocess.run(["iptables", "-S", f"LABSPACE-{bridge}"], capture_output=True,
                           text=True, check=True).stdout
    public_port = stack_url.rsplit(":", 1)[1]
    assert f"--dport {public_port} -j RETURN" in chain and chain.rstrip().endswith("-j DROP")
