"""The Swarm runtime's pure translations: ContainerSpec -> service, service + tasks -> info."""

from __future__ import annotations

from typing import Any

from labspace.runtime.base import ContainerSpec, Limits, Mount
from labspace.runtime.docker import BASE_CAPS
from labspace.runtime.swarmspec import (
    NO_NEW_PRIVS_ENV,
    PORTS_LABEL,
    current_task,
    info_from_service,
    labels_wanted,
    meant_to_run,
    preparing,
    service_spec,
    unconfirmed_end,
)

SPEC = ContainerSpec(
    name="labspace-x-1-ada-lab", image="registry.lab:5000/labspace/jupyterlab:latest",
    command=["start-app", "--port", "8888"], env={"LABSPACE_USER": "ada"},
    labels={"org.labspace.owner": "ada"}, mounts=[Mount("/nfs/homes/ada", "/home/ada")],
    limits=Limits(cpus=2.0, memory_bytes=4 * 1024**3, pids=512), network="labspace-x",
    hostname="lab", ports=[8888], node_labels={"gpu": "true"})


def test_a_service_reserves_what_it_may_use_and_starts_with_no_replica() -> None:
    body = service_spec(SPEC, caps=BASE_CAPS, log_options={"max-size": "10m"})
    task = body["TaskTemplate"]
    assert body["Mode"] == {"Replicated": {"Replicas": 0}}
    assert body["EndpointSpec"] == {"Mode": "dnsrr"}  # no VIP: each task's address
    assert task["Resources"]["Reservations"] == {"NanoCPUs": 2_000_000_000,
                                                 "MemoryBytes": 4 * 1024**3}
    assert task["Resources"]["Limits"]["Pids"] == 512
    assert task["Placement"]["Constraints"] == ["node.labels.gpu==true"]
    assert task["RestartPolicy"] == {"Condition": "none"}
    assert task["Networks"] == [{"Target": "labspace-x"}]
    container = task["ContainerSpec"]
    # The image's entrypoint stays (a service's Command would replace it); the app is Args.
    assert "Command" not in container and container["Args"] == ["start-app", "--port", "8888"]
    assert container["CapabilityDrop"] == ["ALL"] and container["CapabilityAdd"] == BASE_CAPS
    assert f"{NO_NEW_PRIVS_ENV}=1" in container["Env"]  # the entrypoint sets it instead
    assert container["Mounts"] == [{"Type": "bind", "Source": "/nfs/homes/ada",
                                    "Target": "/home/ada", "ReadOnly": False}]
    assert body["Labels"][PORTS_LABEL] == "8888"


def test_sudo_workspaces_get_no_no_new_privs() -> None:
    from dataclasses import replace

    body = service_spec(replace(SPEC, sudo=True), caps=BASE_CAPS, log_options={})
    assert not any(e.startswith(NO_NEW_PRIVS_ENV) for e in body["TaskTemplate"][
        "ContainerSpec"]["Env"])


def _service(replicas: int = 1) -> dict[str, Any]:
    return {"ID": "svc1", "Version": {"Index": 7},
            "Spec": {"Name": SPEC.name, "Labels": {"org.labspace.owner": "ada",
                                                   PORTS_LABEL: "8888,2222"},
                     "Mode": {"Replicated": {"Replicas": replicas}}}}


def _task(state: str, index: int, desired: str = "running", **status: Any) -> dict[str, Any]:
    return {"ID": f"task{index}", "NodeID": "n2", "DesiredState": desired,
            "Version": {"Index": index}, "CreatedAt": "2026-11-23T10:00:00Z",
            "Status": {"State": state, **status},
            "Spec": {"ContainerSpec": {"Image": "reg:5000/labspace/jupyterlab:latest@sha256:ab"}},
            "NetworksAttachments": [
                {"Network": {"Spec": {"Name": "ingress", "Ingress": True}},
                 "Addresses": ["10.0.0.9/24"]},
                {"Network": {"Spec": {"Name": "labspace-x"}}, "Addresses": ["10.0.1.5/24"]}]}


def test_a_running_task_is_a_running_container_on_its_node() -> None:
    info = info_from_service(_service(), [_task("shutdown", 3, "shutdown"),
                                          _task("running", 9)], {"n2": "lsnode2"})
    assert info.running and info.node == "lsnode2" and info.id == "svc1"
    assert info.endpoints == {8888: "http://10.0.1.5:8888", 2222: "http://10.0.1.5:2222"}
    assert info.image_id == "sha256:ab"
    assert info.state == {"engine": "swarm", "service": "svc1", "task": "task9"}
    assert PORTS_LABEL not in info.labels and info.labels["org.labspace.owner"] == "ada"


def test_a_pending_task_waits_with_the_engines_reason() -> None:
    pending = _task("pending", 4, Err="no suitable node (insufficient resources on 3 nodes)")
    info = info_from_service(_service(), [pending], {})
    assert info.status == "created" and "insufficient resources" in (info.error or "")
    assert info.endpoints == {}


def test_a_task_an_update_made_is_a_start_under_way_not_an_ended_one() -> None:
    old = _task("shutdown", 3, "shutdown", ContainerStatus={"ContainerID": "c0", "ExitCode": 0})
    fresh = dict(_task("new", 9, "ready"), NodeID="")
    info = info_from_service(_service(), [old, fresh], {})
    assert info.status == "created" and info.state["task"] == "task9"


def test_a_failed_task_is_an_exited_container_with_its_code() -> None:
    failed = _task("failed", 5, "shutdown", Err="task: non-zero exit (3)",
                   ContainerStatus={"ContainerID": "c1", "ExitCode": 3})
    info = info_from_service(_service(), [failed], {})
    assert info.status == "exited" and info.exit_code == 3 and not info.endpoints


def test_a_node_without_the_homes_says_which_node_and_what_to_mount() -> None:
    rejected = _task("rejected", 6, "shutdown", Err='invalid mount config for type "bind": '
                     "bind source path does not exist: /nfs/homes/ada")
    info = info_from_service(_service(), [rejected], {"n2": "lsnode2"})
    assert info.status == "exited" and info.exit_code is None
    assert info.error == ("node lsnode2 has no /nfs/homes/ada: mount the homes (the lab's NFS) "
                          "and shared folders at the same path on every node")
    other = info_from_service(_service(), [_task("rejected", 7, "shutdown", Err="no space")],
                              {"n2": "lsnode2"})
    assert other.error == "node lsnode2 could not run it: no space"


def test_no_task_yet_is_a_created_container() -> None:
    info = info_from_service(_service(replicas=0), [], {})
    assert info.status == "created" and info.error is None
    assert current_task([]) is None


def test_a_task_on_a_lost_node_is_ended_and_names_the_node() -> None:
    # The node died while the task ran: the manager wants it shut down, nobody reports it.
    orphan = _task("running", 8, "shutdown")
    assert unconfirmed_end(orphan) and not meant_to_run(orphan)
    info = info_from_service(_service(), [orphan], {"n2": "lsnode2"}, frozenset({"n2"}))
    assert info.status == "exited" and info.exit_code is None and not info.endpoints
    assert info.error is not None and info.error.startswith("node lsnode2 is down")
    # The same task while its node is fine is a stop under way: still running.
    stopping = info_from_service(_service(), [orphan], {"n2": "lsnode2"}, frozenset())
    assert stopping.running
    # A node that was lost earlier and came back does not end a task meant to run there.
    back = info_from_service(_service(), [_task("running", 9)], {"n2": "lsnode2"},
                             frozenset({"n2"}))
    assert back.running and meant_to_run(_task("running", 9))


def test_the_labels_a_service_asks_of_its_node_are_read_back() -> None:
    body = service_spec(ContainerSpec(name="x", image="i", node_labels={"gpu": "true",
                                                                      "zone": "b"}),
                        caps=[], log_options={})
    assert labels_wanted({"Spec": body}) == {"gpu": "true", "zone": "b"}
    assert labels_wanted({"Spec": {}}) == {}


def test_a_task_being_prepared_says_its_node_pulls_the_image() -> None:
    info = info_from_service(_service(), [_task("preparing", 4)], {"n2": "lsnode2"})
    assert info.status == "created"
    assert info.error == "preparing on lsnode2: the node pulls the image if it lacks it"
    assert preparing("lsnode2", "312.4 MB") == \
        "preparing on lsnode2: the node pulls 312.4 MB of image if it lacks it"
