"""The node guard's pure parts: the rules it keeps on every node and its service."""

from __future__ import annotations

from labspace.runtime.swarmguard import (
    FORWARD_CHAIN,
    GUARDED_LABEL,
    INPUT_CHAIN,
    guard_rules,
    guard_script,
    guard_service_spec,
    nodes_to_mark,
)


def test_workspaces_reach_no_node_but_the_allowed_port() -> None:
    rules = guard_rules(["192.0.2.11", "192.0.2.10", "192.0.2.10"], ["10.0.0.0/8"], [443])
    lines = rules.splitlines()
    forward = [line for line in lines if line.startswith(f"-A {FORWARD_CHAIN} ")]
    assert forward == [
        f"-A {FORWARD_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        f"-A {FORWARD_CHAIN} -d 192.0.2.10/32 -p tcp --dport 443 -j RETURN",
        f"-A {FORWARD_CHAIN} -d 192.0.2.11/32 -p tcp --dport 443 -j RETURN",
        f"-A {FORWARD_CHAIN} -d 192.0.2.10/32 -j DROP",
        f"-A {FORWARD_CHAIN} -d 192.0.2.11/32 -j DROP",
        f"-A {FORWARD_CHAIN} -d 10.0.0.0/8 -j DROP",
    ]
    into = [line for line in lines if line.startswith(f"-A {INPUT_CHAIN} ")]
    assert into[-1] == f"-A {INPUT_CHAIN} -j DROP"
    assert f"-A {INPUT_CHAIN} -p tcp --dport 443 -j RETURN" in into
    # Only labspace's own chains are flushed: Docker's rules stay as they are.
    assert [line for line in lines if line.startswith("-F")] == [
        f"-F {FORWARD_CHAIN}", f"-F {INPUT_CHAIN}"]


def test_the_guard_runs_on_every_node_with_only_the_network_capabilities() -> None:
    spec = guard_service_spec("labspace-guard", "reg/labspace/node-guard:latest",
                              guard_rules(["192.0.2.10"], ["10.0.0.0/8"], []))
    assert spec["Mode"] == {"Global": {}}
    task = spec["TaskTemplate"]
    assert task["Networks"] == [{"Target": "host"}]
    container = task["ContainerSpec"]
    assert container["CapabilityDrop"] == ["ALL"]
    assert sorted(container["CapabilityAdd"]) == ["NET_ADMIN", "NET_RAW"]
    script = container["Command"][2]
    assert "iptables-restore -w 5 --noflush" in script and "192.0.2.10/32" in script
    assert task["RestartPolicy"]["Condition"] == "any"


def test_the_guard_hooks_its_chains_once() -> None:
    script = guard_script("*filter\nCOMMIT\n")
    assert f"-C INPUT -i docker_gwbridge -j {INPUT_CHAIN}" in script  # checked before inserted
    assert f"-I INPUT 1 -i docker_gwbridge -j {INPUT_CHAIN}" in script
    assert "DOCKER-USER" in script


def test_only_a_node_whose_guard_runs_is_marked_for_workspaces() -> None:
    def node(node_id: str, **labels: str) -> dict[str, object]:
        return {"ID": node_id, "Spec": {"Labels": labels}}

    def task(node_id: str, state: str, desired: str = "running") -> dict[str, object]:
        return {"NodeID": node_id, "DesiredState": desired, "Status": {"State": state}}

    nodes = [node("joined"), node("pulling"), node("done", **{GUARDED_LABEL: "1"}),
             node("stopping")]
    tasks = [task("joined", "running"), task("pulling", "preparing"), task("done", "running"),
             task("stopping", "running", desired="shutdown")]
    assert [n["ID"] for n in nodes_to_mark(nodes, tasks)] == ["joined"]
