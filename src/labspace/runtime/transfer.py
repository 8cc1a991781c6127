"""Image pulls and pushes on a Docker engine, with their progress in bytes.

The engine streams one event per layer and step ("Downloading", progressDetail current/total;
"Pull complete"; "Pushing"; "Layer already exists"). :class:`LayerProgress` sums them into the
one line a person wants ("pulling x: 312.4 MB of 1.20 GB"), shown by ``labspace image build
--push`` and, while a start waits for its image, as the workspace's message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from labspace.errors import RuntimeFailure

AsyncProgress = Callable[[str], Awaitable[None]]
# Steps after which a layer counts as transferred in full.
_DONE = {"Download complete", "Pull complete", "Already exists", "Pushed",
         "Layer already exists", "Mounted from"}
_MOVING = {"Downloading", "Pushing"}
REPORT_EVERY_S = 0.5
STALL_TIMEOUT_S = 120.0  # a transfer with no event this long has hung


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class LayerProgress:
    """The bytes moved of every layer seen so far, from the engine's events."""

    def __init__(self) -> None:
        self.layers: dict[str, tuple[int, int]] = {}  # layer id -> (done, total)
        self.last_status = ""

    def update(self, event: dict[str, Any]) -> bool:
        """Take one event; True when it finished a layer (worth reporting at once)."""
        if event.get("error"):
            detail = event.get("errorDetail") or {}
            raise RuntimeFailure(str(detail.get("message") or event["error"]))
        layer, status = str(event.get("id") or ""), str(event.get("status") or "")
        detail = event.get("progressDetail") or {}
        if layer and status in _MOVING and detail.get("total"):
            self.layers[layer] = (int(detail.get("current") or 0), int(detail["total"]))
        if status:
            self.last_status = status
        if layer and any(status.startswith(done) for done in _DONE) and layer in self.layers:
            done, total = self.layers[layer]
            self.layers[layer] = (total, total)
            return done < total
        return False

    @property
    def done(self) -> int:
        return sum(done for done, _ in self.layers.values())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.layers.values())

    def line(self, verb: str, ref: str) -> str:
        if self.total:
            return f"{verb} {ref}: {human_bytes(self.done)} of {human_bytes(self.total)}"
        return f"{verb} {ref}" + (f": {self.last_status.lower()}" if self.last_status else "")


def split_ref(ref: str) -> tuple[str, str]:
    """"host:5000/a/b:tag" -> ("host:5000/a/b", "tag"); no tag is "latest"."""
    repo, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:  # the colon was the registry's port, or there is none
        return ref, "latest"
    return repo, tag


def registry_host(ref: str) -> str | None:
    """The registry a reference names ("reg.lab:5000/a/b" -> "reg.lab:5000"), or None for
    Docker Hub's ("labspace/jl", "debian"): Docker's rule, a first part with a dot, a port
    or "localhost"."""
    first, slash, _ = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def registry_auth(ref: str, config: Path | None = None) -> dict[str, str] | None:
    """The credentials `docker login` stored for ``ref``'s registry, if any (plain ``auth``
    entries of ~/.docker/config.json; credential helpers are the docker CLI's own)."""
    path = config or Path.home() / ".docker" / "config.json"
    first = registry_host(ref)
    if first is None:
        return None  # Docker Hub: anonymous pulls, pushes need `docker login` + the CLI
    try:
        entry = json.loads(path.read_text()).get("auths", {}).get(first, {})
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (OSError, ValueError, KeyError):
        return None
    return {"username": user, "password": password, "serveraddress": first}


async def _follow(events: AsyncIterator[dict[str, Any]], verb: str, ref: str,
                  progress: AsyncProgress) -> LayerProgress:
    seen, reported = LayerProgress(), 0.0
    iterator = aiter(events)
    while True:
        try:
            event = await asyncio.wait_for(anext(iterator), STALL_TIMEOUT_S)
        except StopAsyncIteration:
            return seen
        except TimeoutError as exc:
            raise RuntimeFailure(f"{verb} {ref}: nothing arrived for "
                                 f"{STALL_TIMEOUT_S:.0f} s") from exc
        finished_layer = seen.update(event)
        now = time.monotonic()
        if finished_layer or now - reported >= REPORT_EVERY_S:
            reported = now
            await progress(seen.line(verb, ref))


async def pull(docker: aiodocker.Docker, ref: str, progress: AsyncProgress) -> None:
    """Pull ``ref``, reporting bytes; RuntimeFailure with the registry's words on failure."""
    try:
        seen = await _follow(docker.images.pull(ref, auth=registry_auth(ref), stream=True),
                             "pulling", ref, progress)
    except (DockerError, RuntimeFailure) as exc:  # the engine's, or the stream's error
        raise RuntimeFailure(f"cannot pull {ref}: {exc.message}") from exc
    await progress(f"pulled {ref} ({human_bytes(seen.total)})")


async def push(docker: aiodocker.Docker, ref: str, progress: AsyncProgress) -> None:
    """Push ``ref`` (a local tag naming its registry), reporting bytes."""
    repo, tag = split_ref(ref)
    try:
        seen = await _follow(docker.images.push(repo, tag=tag, auth=registry_auth(ref),
                                                stream=True), "pushing", ref, progress)
    except (DockerError, RuntimeFailure) as exc:  # the engine's, or the stream's error
        raise RuntimeFailure(f"cannot push {ref}: {exc.message}") from exc
    await progress(f"pushed {ref} ({human_bytes(seen.total)} sent)")
