"""Build labspace's workspace images through the runtime's engine client (runtime/images.py).

``build_image("jupyterlab")`` builds ``labspace/jupyterlab:latest`` from
``files/Dockerfile.jupyterlab``, ``files/labspace-entrypoint``, ``files/sshd_config`` and the
instant apps' examples (``files/labspace-dashboard``, ``files/*.ipynb``). The image carries the
label ``org.labspace.image-hash`` (a hash of those files), so a re-run with unchanged files
does nothing, and any change to them triggers a rebuild.

The base image is ``debian:bookworm-slim`` when a registry is reachable, else a Debian
bookworm made locally with ``debootstrap --variant=minbase`` and built ``FROM scratch`` as
``labspace/base:bookworm``; the debootstrap tarball is cached under /var/cache/labspace, so
a rebuild needs no second bootstrap.

The functions are synchronous (the CLI and scripts call them); each opens one engine client.

Command line (usable before labspace's own CLI): ``python -m labspace.images.build --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from labspace.errors import InvalidInput, RuntimeFailure
from labspace.runtime.docker import docker_runtime
from labspace.runtime.images import DockerImages
from labspace.runtime.transfer import registry_host

FILES_DIR = Path(__file__).resolve().parent / "files"
IMAGES: dict[str, str] = {"jupyterlab": "Dockerfile.jupyterlab",
                          "node-guard": "Dockerfile.node-guard"}
ENTRYPOINT_FILE = "labspace-entrypoint"
EXTRA_FILES: dict[str, list[str]] = {
    "jupyterlab": ["sshd_config", "labspace-dashboard", "welcome.ipynb", "dashboard.ipynb"]}

HASH_LABEL = "org.labspace.image-hash"
NAME_LABEL = "org.labspace.image"

REGISTRY_BASE = "debian:bookworm-slim"
LOCAL_BASE = "labspace/base:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PULL_TIMEOUT = 20.0

BaseMode = Literal["auto", "registry", "debootstrap"]
Progress = Callable[[str], None]

_TAIL_LINES = 25
T = TypeVar("T")


def default_tag(name: str) -> str:
    return f"labspace/{name}:latest"


def cache_dir() -> Path:
    """Where the debootstrap tarball and the build lock live (LABSPACE_IMAGE_CACHE overrides)."""
    configured = os.environ.get("LABSPACE_IMAGE_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/labspace")
    return Path.home() / ".cache" / "labspace"


def _sources(name: str) -> list[Path]:
    if name not in IMAGES:
        known = ", ".join(sorted(IMAGES))
        raise RuntimeFailure(f"unknown image {name!r} (known: {known})")
    return [FILES_DIR / IMAGES[name], FILES_DIR / ENTRYPOINT_FILE,
            *(FILES_DIR / extra for extra in EXTRA_FILES.get(name, []))]


def image_hash(name: str = "jupyterlab") -> str:
    """Hash of the files an image is built from; stored in the image's HASH_LABEL."""
    digest = hashlib.sha256(name.encode())
    for path in _sources(name):
        digest.update(b"\0" + path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


# -- the engine ------------------------------------------------------------------------------


def _on_engine(work: Callable[[DockerImages], Awaitable[T]]) -> T:
    """Run ``work`` with a client of the engine (DOCKER_HOST or the local socket)."""

    async def run() -> T:
        async with docker_runtime() as runtime:
            return await work(DockerImages(runtime))

    return asyncio.run(run())


def image_label(tag: str, key: str = HASH_LABEL) -> str | None:
    """The value of one label of a local image; None when the image or label is missing."""
    labels = _on_engine(lambda images: images.labels(tag)) or {}
    return labels.get(key)


def image_present(tag: str) -> bool:
    """Whether the image exists in the local engine."""
    return _on_engine(lambda images: images.labels(tag)) is not None


def image_up_to_date(tag: str | None = None, name: str = "jupyterlab") -> bool:
    """Whether the image exists and was built from the current Dockerfile and entrypoint."""
    return image_label(tag or default_tag(name)) == image_hash(name)


def _stream(cmd: Sequence[str], progress: Progress, what: str) -> None:
    """Run cmd, passing each output line to progress; RuntimeFailure with the tail on error."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", bufsize=1,
        )
    except OSError as exc:
        raise RuntimeFailure(f"{what} failed: cannot run {cmd[0]}: {exc}") from exc
    assert proc.stdout is not None
    with proc:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            progress(line)
        code = proc.wait()
    if code != 0:
        last = "\n".join(tail)
        raise RuntimeFailure(f"{what} failed (exit {code}); last lines:\n{last}", detail=last)


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """One build at a time per machine (tests, scripts and the CLI may race)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- base image -------------------------------------------------------------------------------


async def _try_registry_base(images: DockerImages, progress: Progress) -> str | None:
    if await images.labels(REGISTRY_BASE) is not None:
        progress(f"base: {REGISTRY_BASE} (present locally)")
        return REGISTRY_BASE
    progress(f"base: trying to pull {REGISTRY_BASE} (up to {PULL_TIMEOUT:.0f} s)")
    try:
        await images.pull(REGISTRY_BASE, timeout=PULL_TIMEOUT)
    except RuntimeFailure as exc:
        progress(f"base: pull failed: {exc}")
        return None
    return REGISTRY_BASE


def _debootstrap_tarball(mirror: str, security_mirror: str, progress: Progress) -> Path:
    """The cached minbase root filesystem tarball, made once with debootstrap."""
    directory = cache_dir()
    tarball = directory / f"{SUITE}-minbase.tar"
    stamp = directory / f"{SUITE}-minbase.mirror"
    if tarball.is_file() and stamp.is_file() and stamp.read_text().strip() == mirror:
        progress(f"base: using cached {tarball}")
        return tarball
    if os.geteuid() != 0:
        raise RuntimeFailure("debootstrap needs root; run the build as root (or use --base "
                             "registry with a reachable registry)")
    if shutil.which("debootstrap") is None:
        raise RuntimeFailure("debootstrap is not installed (apt-get install debootstrap)")
    directory.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"{SUITE}-root.", dir=directory))
    try:
        progress(f"base: debootstrap --variant=minbase {SUITE} from {mirror} (a few minutes)")
        _stream(["debootstrap", "--variant=minbase", SUITE, str(root), mirror], progress,
                "debootstrap")
        # Trim and configure like the registry images: no package caches, our mirrors.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / sub).glob("*"):
                if entry.is_file():
                    entry.unlink()
        (root / "etc/apt/sources.list").write_text(
            f"deb {mirror} {SUITE} main\n"
            f"deb {mirror} {SUITE}-updates main\n"
            f"deb {security_mirror} {SUITE}-security main\n"
        )
        (root / "etc/hostname").write_text("")
        resolv = root / "etc/resolv.conf"
        if resolv.is_file() and not resolv.is_symlink():
            resolv.write_text("")  # the engine provides its own at run time
        partial = tarball.with_suffix(".tar.partial")
        progress(f"base: packing {tarball}")
        _stream(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial),
                 "."], progress, "packing the base tarball")
        partial.replace(tarball)
        stamp.write_text(mirror + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tarball


# The debootstrap'ed root filesystem as an image: what `docker import` would make, built
# through the same API as every other image (ADD unpacks a local tar, owners and modes kept).
LOCAL_BASE_DOCKERFILE = """\
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8
CMD ["/bin/bash"]
"""


async def _local_base(images: DockerImages, mirror: str, security_mirror: str,
                      progress: Progress) -> str:
    if await images.labels(LOCAL_BASE) is not None:
        progress(f"base: {LOCAL_BASE} (present locally)")
        return LOCAL_BASE
    tarball = await asyncio.to_thread(_debootstrap_tarball, mirror, security_mirror, progress)
    await build_rootfs_image(images, tarball, LOCAL_BASE, progress)
    return LOCAL_BASE


async def build_rootfs_image(images: DockerImages, tarball: Path, tag: str,
                             progress: Progress) -> None:
    """Make image ``tag`` of the root filesystem in ``tarball`` (the local base)."""
    progress(f"base: building {tag} from {tarball}")
    await images.build({"Dockerfile": LOCAL_BASE_DOCKERFILE.encode(), "rootfs.tar": tarball},
                       tag=tag, dockerfile="Dockerfile", progress=progress)


async def _ensure_base(
    images: DockerImages, base: BaseMode, mirror: str, security_mirror: str,
    progress: Progress,
) -> str:
    if base not in ("auto", "registry", "debootstrap"):
        raise RuntimeFailure(f"unknown base {base!r} (auto, registry or debootstrap)")
    if base in ("auto", "registry"):
        found = await _try_registry_base(images, progress)
        if found:
            return found
        if base == "registry":
            raise RuntimeFailure(f"cannot pull {REGISTRY_BASE}; try --base debootstrap")
    return await _local_base(images, mirror, security_mirror, progress)


def ensure_base(
    base: BaseMode = "auto",
    *,
    mirror: str = DEFAULT_MIRROR,
    security_mirror: str = DEFAULT_SECURITY_MIRROR,
    progress: Progress = print,
) -> str:
    """Make the base image available; return its reference."""
    return _on_engine(lambda images: _ensure_base(images, base, mirror, security_mirror,
                                                  progress))


# -- the build --------------------------------------------------------------------------------


def _context(name: str) -> dict[str, Path | bytes]:
    files: dict[str, Path | bytes] = {path.name: path for path in _sources(name)}
    files["host-ca.crt"] = "".join(host_extra_cas()).encode()
    return files


def _pem_blocks(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines():
        if "-BEGIN CERTIFICATE-" in line:
            current = [line.strip()]
        elif current:
            current.append(line.strip())
            if "-END CERTIFICATE-" in line:
                blocks.append("\n".join(current) + "\n")
                current = []
    return blocks


def host_extra_cas(bundle: Path = HOST_CA_BUNDLE) -> list[str]:
    """PEM certificates the host trusts beyond Debian's stock set (e.g. a site proxy's CA).

    The image trusts them too, so pip and git work from the same network as the host.
    """
    if not bundle.is_file():
        return []
    stock: set[str] = set()
    for path in Path("/usr/share/ca-certificates").glob("**/*.crt"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            stock.update(_pem_blocks(path.read_text()))
    return [block for block in _pem_blocks(bundle.read_text()) if block not in stock]


def build_image(
    name: str = "jupyterlab",
    tag: str | None = None,
    base: BaseMode = "auto",
    force: bool = False,
    progress: Progress = print,
    *,
    mirror: str = DEFAULT_MIRROR,
    security_mirror: str = DEFAULT_SECURITY_MIRROR,
) -> str:
    """Build workspace image ``name`` (unless already up to date); return its tag.

    ``force`` rebuilds without the layer cache even when the image is up to date. Raises
    RuntimeFailure (with the last lines of output) when the engine or the build fails.
    """
    tag = tag or default_tag(name)
    wanted = image_hash(name)

    async def build(images: DockerImages) -> None:
        if not force and ((await images.labels(tag)) or {}).get(HASH_LABEL) == wanted:
            progress(f"{tag} is up to date ({HASH_LABEL}={wanted})")
            return
        started = time.monotonic()
        base_ref = await _ensure_base(images, base, mirror, security_mirror, progress)
        progress(f"building {tag} from {base_ref}")
        await images.build(
            _context(name), tag=tag, dockerfile=IMAGES[name], buildargs={"BASE": base_ref},
            labels={HASH_LABEL: wanted, NAME_LABEL: name}, nocache=force, progress=progress)
        if ((await images.labels(tag)) or {}).get(HASH_LABEL) != wanted:
            raise RuntimeFailure(f"the build of {tag} finished but the image lacks its label")
        progress(f"built {tag} in {time.monotonic() - started:.0f} s")

    with _build_lock(cache_dir()):
        _on_engine(build)
    return tag


def registry_ref(tag: str, registry: str) -> str:
    """``tag`` under ``registry`` ("labspace/jupyterlab:latest", "registry.lab:5000" ->
    "registry.lab:5000/labspace/jupyterlab:latest"); a tag naming a registry keeps only its
    path."""
    registry = registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not registry or "/" in registry or " " in registry:
        raise InvalidInput(f"registry {registry!r} is not a host[:port]")
    named = registry_host(tag)
    if named is not None:
        tag = tag[len(named) + 1:]
    return f"{registry}/{tag}"


def push_image(tag: str, registry: str, progress: Progress = print) -> str:
    """Tag ``tag`` under ``registry`` and push it there, reporting bytes; return the pushed
    reference (what nodes pull, and what labspace.toml names)."""
    target = registry_ref(tag, registry)

    async def push(images: DockerImages) -> None:
        if await images.labels(tag) is None:
            raise InvalidInput(f"no image {tag} here to push: build it first")
        await images.push(tag, target, progress)

    _on_engine(push)
    return target


def build_images(
    names: Sequence[str] | None = None,
    base: BaseMode = "auto",
    force: bool = False,
    progress: Progress = print,
) -> list[str]:
    """Build several images (default: all of them); return their tags."""
    return [build_image(name, base=base, force=force, progress=progress)
            for name in (names or sorted(IMAGES))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labspace.images.build",
        description="Build labspace workspace images (skipped when already up to date).",
    )
    parser.add_argument("name", nargs="?", default="jupyterlab", choices=sorted(IMAGES),
                        help="image to build (default: jupyterlab)")
    parser.add_argument("--tag", help="image tag (default: labspace/<name>:latest)")
    parser.add_argument("--base", default="auto", choices=["auto", "registry", "debootstrap"],
                        help=f"auto: pull {REGISTRY_BASE}, else debootstrap locally")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR, help="Debian mirror for debootstrap")
    parser.add_argument("--security-mirror", default=DEFAULT_SECURITY_MIRROR,
                        help="Debian security mirror written into the base image")
    parser.add_argument("--force", action="store_true",
                        help="rebuild without the layer cache even when up to date")
    parser.add_argument("--check", action="store_true",
                        help="only report: exit 0 when the image is up to date, 1 otherwise")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    args = parser.parse_args(argv)

    tag = args.tag or default_tag(args.name)
    if args.check:
        try:
            current = image_up_to_date(tag, args.name)
        except RuntimeFailure as exc:  # no engine answers: the image is not usable either
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{tag}: {'up to date' if current else 'missing or out of date'}")
        return 0 if current else 1

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    try:
        built = build_image(args.name, tag=tag, base=args.base, force=args.force,
                            progress=progress, mirror=args.mirror,
                            security_mirror=args.security_mirror)
    except RuntimeFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
