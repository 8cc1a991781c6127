"""What a container is given for each request: device nodes, read-only driver files (from a
CDI spec written here, or from a host tree made here) and the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labspace.gpus import GpuInfo, GpuRequest, GpuService, Grant
from labspace.gpus.container import LABEL_GPUS, with_gpus
from labspace.gpus.driver import BIN_DIR, LIB_DIR, DriverFiles, find_driver_files, linker_dirs
from labspace.runtime import ContainerSpec, Mount

DRIVER = "550.54.15"
ELF64 = b"\x7fELF\x02\x01\x01"  # what a library's first bytes say: ELF, 64-bit
GPUS = [GpuInfo(index=i, uuid=f"GPU-{i}aa", name="NVIDIA H100", minor=i + 10,
                memory_total_bytes=80, memory_used_bytes=0, mig=False) for i in range(4)]


def base() -> ContainerSpec:
    return ContainerSpec(name="ws", image="img", env={"A": "1"},
                         mounts=[Mount("/homes/ada", "/home/ada")])


def driver_tree(root: Path) -> Path:
    """A host's driver, as the NVIDIA installer lays it out (files and soname links)."""
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    lib32 = root / "usr/lib/i386-linux-gnu"  # a multiarch host's 32-bit copies
    lib32.mkdir(parents=True)
    for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"):
        (lib / f"{name}.so.{DRIVER}").write_bytes(ELF64)
        os.symlink(f"{name}.so.{DRIVER}", lib / f"{name}.so.1")
    (lib32 / f"libcuda.so.{DRIVER}").write_bytes(b"\x7fELF\x01")
    (lib32 / "libnvidia-ml.so.1").write_bytes(b"\x7fELF\x01")
    os.symlink("libcuda.so.1", lib / "libcuda.so")
    (lib / "libGL.so.1").write_bytes(b"")  # not the driver's: never handed in
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/nvidia-smi").write_bytes(b"")
    (root / "dev").mkdir()
    for node in ("nvidiactl", "nvidia-uvm", "nvidia10", "nvidia-modeset"):
        (root / "dev" / node).write_bytes(b"")
    return lib


def test_whole_gpus_get_exactly_their_nodes_and_the_drivers_files(tmp_path: Path) -> None:
    lib = driver_tree(tmp_path)
    files = find_driver_files([tmp_path / "no-cdi"], dev_dir=tmp_path / "dev",
                              lib_dirs=[str(tmp_path / "usr/lib/i386-linux-gnu"), str(lib)],
                              bin_dirs=[str(tmp_path / "usr/bin")])
    assert files.origin == "host"
    # the control nodes that exist (no uvm-tools here; never nvidia-modeset)
    assert files.control_nodes == (str(tmp_path / "dev/nvidiactl"),
                                   str(tmp_path / "dev/nvidia-uvm"))
    spec = with_gpus(base(), Grant(("GPU-1aa", "GPU-3aa")), GPUS, files)
    assert spec.devices == ["/dev/nvidia11", "/dev/nvidia13", *files.control_nodes]
    added = spec.mounts[1:]
    assert all(m.read_only for m in added)
    assert {m.target for m in added} == {
        f"{LIB_DIR}/{name}" for name in (
            f"libcuda.so.{DRIVER}", "libcuda.so.1", "libcuda.so", f"libnvidia-ml.so.{DRIVER}",
            "libnvidia-ml.so.1", f"libnvidia-ptxjitcompiler.so.{DRIVER}",
            "libnvidia-ptxjitcompiler.so.1")} | {f"{BIN_DIR}/nvidia-smi"}
    assert spec.env["NVIDIA_VISIBLE_DEVICES"] == spec.env["CUDA_VISIBLE_DEVICES"] == \
        "GPU-1aa,GPU-3aa"
    assert spec.env["LD_LIBRARY_PATH"] == LIB_DIR and spec.env["A"] == "1"
    assert spec.labels[LABEL_GPUS].startswith("GPU-1aa,GPU-3aa@")


def test_a_shared_gpu_is_labelled_as_such(tmp_path: Path) -> None:
    spec = with_gpus(base(), Grant(("GPU-2aa",), shared=True), GPUS, DriverFiles())
    assert spec.devices == ["/dev/nvidia12"]
    assert spec.labels[LABEL_GPUS].startswith("shared:GPU-2aa@")


def test_no_gpu_asked_no_gpu_given() -> None:
    spec = with_gpus(base(), None, GPUS, DriverFiles(("/dev/nvidiactl",), (
        Mount("/x/libcuda.so.1", f"{LIB_DIR}/libcuda.so.1", True),), "host"))
    assert spec.devices == [] and spec.mounts == base().mounts
    assert "CUDA_VISIBLE_DEVICES" not in spec.env and "LD_LIBRARY_PATH" not in spec.env
    # a CUDA image's own NVIDIA_VISIBLE_DEVICES=all would hand it every GPU under the
    # NVIDIA runtime: "void" is the toolkit's "none"
    assert spec.env["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_an_images_library_path_is_kept_after_the_drivers() -> None:
    spec = with_gpus(ContainerSpec(name="ws", image="i", env={"LD_LIBRARY_PATH": "/opt/x"}),
                     Grant(("GPU-0aa",)), GPUS, DriverFiles())
    assert spec.env["LD_LIBRARY_PATH"] == f"{LIB_DIR}:/opt/x"


def cdi_spec(lib: Path) -> dict[str, object]:
    """The shape `nvidia-ctk cdi generate` writes (trimmed)."""
    return {
        "cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
        "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}},
                    {"name": "all", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}],
        "containerEdits": {
            "env": ["NVIDIA_VISIBLE_DEVICES=void"],
            "deviceNodes": [{"path": "/dev/nvidia-modeset"}, {"path": "/dev/nvidia-uvm"},
                            {"path": "/dev/nvidia-uvm-tools"}, {"path": "/dev/nvidiactl"}],
            "hooks": [{"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk",
                       "args": ["nvidia-ctk", "hook", "update-ldcache", "--folder",
                                str(lib)]}],
            "mounts": [
                {"hostPath": str(lib / f"libcuda.so.{DRIVER}"),
                 "containerPath": str(lib / f"libcuda.so.{DRIVER}"),
                 "options": ["ro", "nosuid", "nodev", "bind"]},
                {"hostPath": str(lib / f"libnvidia-ml.so.{DRIVER}"),
                 "containerPath": str(lib / f"libnvidia-ml.so.{DRIVER}"),
                 "options": ["ro", "nosuid", "nodev", "bind"]},
                {"hostPath": "/usr/bin/nvidia-smi", "containerPath": "/usr/bin/nvidia-smi",
                 "options": ["ro", "nosuid", "nodev", "bind"]},
                {"hostPath": f"/lib/firmware/nvidia/{DRIVER}/gsp_ga10x.bin",
                 "containerPath": f"/lib/firmware/nvidia/{DRIVER}/gsp_ga10x.bin",
                 "options": ["ro", "nosuid", "nodev", "bind"]}]}}


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_the_toolkits_cdi_spec_is_used_where_the_host_has_one(tmp_path: Path,
                                                              form: str) -> None:
    lib = driver_tree(tmp_path)
    cdi = tmp_path / "etc/cdi"
    cdi.mkdir(parents=True)
    (cdi / "other.json").write_text(json.dumps({"kind": "example.com/fpga"}))
    (cdi / "broken.json").write_text("{")  # ignored, with a warning
    if form == "yaml":
        yaml = pytest.importorskip("yaml")
        (cdi / "nvidia.yaml").write_text(yaml.safe_dump(cdi_spec(lib)))
    else:
        (cdi / "nvidia.json").write_text(json.dumps(cdi_spec(lib)))
    files = find_driver_files([tmp_path / "var/run/cdi", cdi], dev_dir=tmp_path / "dev")
    assert files.origin == f"cdi:{cdi}/nvidia.{form}"
    assert files.control_nodes == ("/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                                   "/dev/nvidiactl")
    by_target = {m.target: m for m in files.mounts}
    assert set(by_target) == {
        f"{LIB_DIR}/libcuda.so.{DRIVER}", f"{LIB_DIR}/libcuda.so.1", f"{LIB_DIR}/libcuda.so",
        f"{LIB_DIR}/libnvidia-ml.so.{DRIVER}", f"{LIB_DIR}/libnvidia-ml.so.1",
        f"{BIN_DIR}/nvidia-smi", f"/lib/firmware/nvidia/{DRIVER}/gsp_ga10x.bin"}
    # the soname links found beside it on the host name the same file in the container
    assert by_target[f"{LIB_DIR}/libcuda.so.1"].source == str(lib / f"libcuda.so.{DRIVER}")
    assert all(m.read_only for m in files.mounts)
    spec = with_gpus(base(), Grant(("GPU-0aa",)), GPUS, files)
    assert spec.devices == ["/dev/nvidia10", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                            "/dev/nvidiactl"]


def test_linker_dirs_follow_includes(tmp_path: Path) -> None:
    (tmp_path / "ld.so.conf.d").mkdir()
    (tmp_path / "ld.so.conf").write_text("include ld.so.conf.d/*.conf\n/opt/a # comment\n")
    (tmp_path / "ld.so.conf.d/nvidia.conf").write_text("/usr/local/nvidia/lib64\n")
    assert linker_dirs(tmp_path / "ld.so.conf") == ["/usr/local/nvidia/lib64", "/opt/a"]


def test_a_host_without_the_driver_has_no_files(tmp_path: Path) -> None:
    files = find_driver_files([], dev_dir=tmp_path, lib_dirs=[str(tmp_path)], bin_dirs=[])
    assert files == DriverFiles() and not files.found


async def test_the_service_on_swarm_reserves_generic_resources() -> None:
    from labspace.gpus import NoGpus

    service = GpuService(NoGpus(), cluster=True)
    await service.open()
    assert await service.take(1, "ada/x", GpuRequest(whole=2)) is None  # the swarm picks
    spec = service.container(base(), GpuRequest(whole=2), None)
    assert spec.generic_resources == {"GPU": 2} and spec.devices == []
    with pytest.raises(Exception, match="shared GPU needs labspace's single-host runtime"):
        await service.take(1, "ada/x", GpuRequest(shared=True))
