"""Build labspace's workspace images with the ``docker`` CLI.

``build_image("jupyterlab")`` builds ``labspace/jupyterlab:latest`` from
``files/Dockerfile.jupyterlab`` and ``files/labspace-entrypoint``. The image carries the label
``org.labspace.image-hash`` (a hash of those files), so a re-run with unchanged files does
nothing, and any change to them triggers a rebuild.

The base image is ``debian:bookworm-slim`` when a registry is reachable, else a Debian
bookworm made locally with ``debootstrap --variant=minbase`` and imported as
``labspace/base:bookworm``; the debootstrap tarball is cached under /var/cache/labspace, so
a rebuild needs no second bootstrap.

Command line (usable before labspace's own CLI): ``python -m labspace.images.build --help``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from labspace.errors import RuntimeFailure

FILES_DIR = Path(__file__).resolve().parent / "files"
IMAGES: dict[str, str] = {"jupyterlab": "Dockerfile.jupyterlab"}
ENTRYPOINT_FILE = "labspace-entrypoint"

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
    return [FILES_DIR / IMAGES[name], FILES_DIR / ENTRYPOINT_FILE]


def image_hash(name: str = "jupyterlab") -> str:
    """Hash of the files an image is built from; stored in the image's HASH_LABEL."""
    digest = hashlib.sha256(name.encode())
    for path in _sources(name):
        digest.update(b"\0" + path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


# -- docker helpers ---------------------------------------------------------------------------


def _docker_env() -> dict[str, str]:
    env = dict(os.environ)
    # The classic builder streams plain lines and needs no buildx plugin (the newer client
    # in /usr/local/bin has none, and BuildKit would then refuse to build).
    env["DOCKER_BUILDKIT"] = "0"
    return env


def _docker(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker") is None:
        raise RuntimeFailure("the docker command is not installed (run scripts/ensure-docker.sh)")
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout,
            env=_docker_env(), check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeFailure(f"docker {args[0]} did not answer within {timeout:.0f} s") from exc


def image_label(tag: str, key: str = HASH_LABEL) -> str | None:
    """The value of one label of a local image; None when the image or label is missing."""
    result = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", tag)
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout.strip() or "null") or {}
    value = labels.get(key)
    return value if isinstance(value, str) else None


def image_present(tag: str) -> bool:
    """Whether the image exists in the local engine."""
    return _docker("image", "inspect", "--format", "{{.Id}}", tag).returncode == 0


def image_up_to_date(tag: str | None = None, name: str = "jupyterlab") -> bool:
    """Whether the image exists and was built from the current Dockerfile and entrypoint."""
    return image_label(tag or default_tag(name)) == image_hash(name)


def _stream(cmd: Sequence[str], progress: Progress, what: str) -> None:
    """Run cmd, passing each output line to progress; RuntimeFailure with the tail on error."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", bufsize=1, env=_docker_env(),
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


def _try_registry_base(progress: Progress) -> str | None:
    if image_present(REGISTRY_BASE):
        progress(f"base: {REGISTRY_BASE} (present locally)")
        return REGISTRY_BASE
    progress(f"base: trying docker pull {REGISTRY_BASE} (up to {PULL_TIMEOUT:.0f} s)")
    try:
        result = _docker("pull", REGISTRY_BASE, timeout=PULL_TIMEOUT)
    except RuntimeFailure as exc:
        progress(f"base: pull failed: {exc}")
        return None
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        progress(f"base: pull failed: {reason[-1] if reason else 'unknown error'}")
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


def _local_base(mirror: str, security_mirror: str, progress: Progress) -> str:
    if image_present(LOCAL_BASE):
        progress(f"base: {LOCAL_BASE} (present locally)")
        return LOCAL_BASE
    tarball = _debootstrap_tarball(mirror, security_mirror, progress)
    progress(f"base: docker import {tarball} {LOCAL_BASE}")
    _stream(["docker", "import", "-c", 'CMD ["/bin/bash"]', "-c", "ENV LANG=C.UTF-8",
             str(tarball), LOCAL_BASE], progress, "docker import of the base image")
    return LOCAL_BASE


def ensure_base(
    base: BaseMode = "auto",
    *,
    mirror: str = DEFAULT_MIRROR,
    security_mirror: str = DEFAULT_SECURITY_MIRROR,
    progress: Progress = print,
) -> str:
    """Make the base image available; return its reference."""
    if base not in ("auto", "registry", "debootstrap"):
        raise RuntimeFailure(f"unknown base {base!r} (auto, registry or debootstrap)")
    if base in ("auto", "registry"):
        found = _try_registry_base(progress)
        if found:
            return found
        if base == "registry":
            raise RuntimeFailure(f"cannot pull {REGISTRY_BASE}; try --base debootstrap")
    return _local_base(mirror, security_mirror, progress)


# -- the build --------------------------------------------------------------------------------


def _context(name: str, directory: Path) -> None:
    for path in _sources(name):
        shutil.copy2(path, directory / path.name)
    (directory / "host-ca.crt").write_text("".join(host_extra_cas()))
    (directory / ".dockerignore").write_text("")


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
    with _build_lock(cache_dir()):
        if not force and image_label(tag) == wanted:
            progress(f"{tag} is up to date ({HASH_LABEL}={wanted})")
            return tag
        started = time.monotonic()
        base_ref = ensure_base(base, mirror=mirror, security_mirror=security_mirror,
                               progress=progress)
        with tempfile.TemporaryDirectory(prefix="labspace-build.") as tmp:
            context = Path(tmp)
            _context(name, context)
            cmd = [
                "docker", "build", "--rm", "--force-rm",
                "--build-arg", f"BASE={base_ref}",
                "--label", f"{HASH_LABEL}={wanted}",
                "--label", f"{NAME_LABEL}={name}",
                "-f", str(context / IMAGES[name]), "-t", tag,
            ]
            if force:
                cmd.append("--no-cache")
            progress(f"building {tag} from {base_ref}")
            _stream([*cmd, str(context)], progress, f"docker build of {tag}")
        if image_label(tag) != wanted:
            raise RuntimeFailure(f"docker build of {tag} finished but the image lacks its label")
        progress(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


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
        current = image_up_to_date(tag, args.name)
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
