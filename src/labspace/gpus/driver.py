"""The NVIDIA driver's files a GPU workspace needs: its control device nodes and its
user-space libraries and tools, found once at hub start.

Where the host has the NVIDIA container toolkit's CDI specification (``nvidia-ctk cdi
generate`` writes /etc/cdi/nvidia.yaml or /var/run/cdi/nvidia.json), its list is used as it
is: it names exactly the files of the installed driver. Otherwise the host is searched as the
toolkit does: the driver's libraries by name in the linker's directories (/etc/ld.so.conf and
the standard ones), its tools in the usual bin directories, its control nodes under /dev.

Libraries are mounted read-only under /usr/local/nvidia/lib64 (tools under
/usr/local/nvidia/bin), not at their host paths: the toolkit's CDI hooks that refresh the
image's linker cache need a CDI-aware engine, while that directory is where CUDA images look
already (their LD_LIBRARY_PATH and ld.so.conf.d name it), and labspace sets
LD_LIBRARY_PATH to it for the rest. Soname links (libcuda.so.1 -> libcuda.so.550.54.15)
found beside a library on the host are mounted under their own names too.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labspace.runtime import Mount

log = logging.getLogger(__name__)

LIB_DIR = "/usr/local/nvidia/lib64"
BIN_DIR = "/usr/local/nvidia/bin"
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
# The compute part of the toolkit's list (nvidia-container-toolkit, internal/discover):
# graphics and video libraries are left out, workspaces run CUDA.
DRIVER_LIBRARIES = (
    "libnvidia-ml", "libcuda", "libcudadebugger", "libnvidia-ptxjitcompiler",
    "libnvidia-nvvm", "libnvidia-opencl", "libnvidia-allocator", "libnvidia-cfg",
    "libnvidia-gpucomp", "libnvidia-pkcs11", "libnvidia-pkcs11-openssl3",
)
DRIVER_TOOLS = ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced",
                "nvidia-cuda-mps-control", "nvidia-cuda-mps-server")
STANDARD_LIB_DIRS = ("/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu",
                     "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib/x86_64-linux-gnu",
                     "/lib64", "/usr/lib")
STANDARD_BIN_DIRS = ("/usr/local/nvidia/bin", "/usr/bin", "/usr/sbin")
CDI_KIND = "nvidia.com/gpu"
_LIBRARY = re.compile(r"\.so(\.\d+)*$")


@dataclass(frozen=True)
class DriverFiles:
    control_nodes: tuple[str, ...] = ()  # host device paths, e.g. /dev/nvidiactl
    mounts: tuple[Mount, ...] = ()  # all read-only
    origin: str = "none"  # "cdi:<file>", "host" or "none", for the log and the admin

    @property
    def found(self) -> bool:
        return bool(self.mounts)


def find_driver_files(cdi_dirs: Sequence[Path], *, dev_dir: Path = Path("/dev"),
                      lib_dirs: Sequence[str] | None = None,
                      bin_dirs: Sequence[str] = STANDARD_BIN_DIRS,
                      ld_conf: Path = Path("/etc/ld.so.conf")) -> DriverFiles:
    """The driver's files from the first CDI spec of kind nvidia.com/gpu in ``cdi_dirs``,
    else from the host. Blocking (it reads the disk): call it in a thread."""
    for path, spec in _cdi_specs(cdi_dirs):
        if spec.get("kind") == CDI_KIND:
            return _from_cdi(spec, f"cdi:{path}")
    dirs = list(lib_dirs) if lib_dirs is not None else linker_dirs(ld_conf) + list(
        STANDARD_LIB_DIRS)
    return _from_host(dev_dir, list(dict.fromkeys(dirs)), bin_dirs)


# -- the CDI specification ----------------------------------------------------------------

def _cdi_specs(dirs: Sequence[Path]) -> Iterable[tuple[Path, dict[str, Any]]]:
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            try:
                spec = _load(path)
            except (OSError, ValueError) as error:
                log.warning("ignoring the CDI spec %s: %s", path, error)
                continue
            if isinstance(spec, dict):
                yield path, spec


def _load(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml  # PyYAML, present with uvicorn[standard]; not a dependency of ours
        except ImportError:
            raise ValueError("YAML needs PyYAML; write it as JSON (`nvidia-ctk cdi "
                             "generate --format json`)") from None
        try:
            return yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ValueError(str(error)) from error
    return None


def _from_cdi(spec: dict[str, Any], origin: str) -> DriverFiles:
    edits = spec.get("containerEdits") or {}
    nodes = [str(node.get("path", "")) for node in edits.get("deviceNodes") or []]
    control = tuple(path for path in nodes if os.path.basename(path) in CONTROL_NODES)
    mounts: list[Mount] = []
    for mount in edits.get("mounts") or []:
        host, inside = str(mount.get("hostPath", "")), str(mount.get("containerPath", ""))
        if host.startswith("/") and inside.startswith("/"):
            mounts += _placed(host, inside)
    return DriverFiles(control, tuple(_unique(mounts)), origin)


def _placed(host: str, inside: str) -> list[Mount]:
    name = os.path.basename(host)
    if _LIBRARY.search(name):
        return [Mount(host, f"{LIB_DIR}/{link}", read_only=True)
                for link in [name, *_links_to(host)]]
    if os.path.basename(os.path.dirname(host)) in ("bin", "sbin"):
        return [Mount(host, f"{BIN_DIR}/{name}", read_only=True)]
    return [Mount(host, inside, read_only=True)]  # firmware, the persistenced socket


def _links_to(path: str) -> list[str]:
    """Names in the library's directory that are symbolic links to it (its soname)."""
    directory, name = os.path.split(path)
    stem = name.split(".so", 1)[0]
    links = []
    for candidate in glob.glob(os.path.join(glob.escape(directory), glob.escape(stem) + ".so*")):
        if os.path.islink(candidate) and os.path.realpath(candidate) == os.path.realpath(path):
            links.append(os.path.basename(candidate))
    return sorted(links)


# -- the host, searched as the toolkit does ------------------------------------------------

def linker_dirs(conf: Path) -> list[str]:
    """The directories /etc/ld.so.conf names, following its ``include`` lines."""
    found: list[str] = []

    def read(path: Path, depth: int) -> None:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line.startswith("include ") and depth < 4:
                pattern = line.split(None, 1)[1]
                if not pattern.startswith("/"):
                    pattern = str(path.parent / pattern)
                for included in sorted(glob.glob(pattern)):
                    read(Path(included), depth + 1)
            elif line.startswith("/") and line not in found:
                found.append(line)

    read(conf, 0)
    return found


def _from_host(dev_dir: Path, lib_dirs: Sequence[str], bin_dirs: Sequence[str]
               ) -> DriverFiles:
    control = tuple(str(dev_dir / name) for name in CONTROL_NODES if (dev_dir / name).exists())
    mounts: list[Mount] = []
    for library in DRIVER_LIBRARIES:
        for directory in lib_dirs:  # the first directory that has it, as the linker would
            names = sorted(glob.glob(os.path.join(glob.escape(directory),
                                                  glob.escape(library) + ".so*")))
            # no dangling links; and not the 32-bit copies a multiarch host keeps in its
            # i386 directory, which the linker lists too (a 64-bit CUDA cannot load them)
            names = [n for n in names if os.path.exists(n) and _elf64(n)]
            if names:
                mounts += [Mount(n, f"{LIB_DIR}/{os.path.basename(n)}", read_only=True)
                           for n in names]
                break
    for tool in DRIVER_TOOLS:
        for directory in bin_dirs:
            path = os.path.join(directory, tool)
            if os.path.isfile(path):
                mounts.append(Mount(path, f"{BIN_DIR}/{tool}", read_only=True))
                break
    origin = "host" if mounts else "none"
    return DriverFiles(control, tuple(_unique(mounts)), origin)


def _elf64(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            head = file.read(5)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and head[4:5] == b"\x02"  # EI_CLASS: ELFCLASS64


def _unique(mounts: list[Mount]) -> list[Mount]:
    seen: set[str] = set()
    kept = []
    for mount in mounts:
        if mount.target not in seen:
            seen.add(mount.target)
            kept.append(mount)
    return kept
