"""Images on the Docker engine, through the runtime's aiodocker client (as containers are).

Used by labspace.images.build: inspect an image's labels, pull one, and build one from a
context given as files, streaming the build's output lines. Engine errors become
RuntimeFailure here, with the build's last lines.
"""

from __future__ import annotations

import asyncio
import collections
import io
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from aiodocker.exceptions import DockerError

from labspace.errors import RuntimeFailure
from labspace.runtime import transfer
from labspace.runtime.docker import DockerRuntime

Progress = Callable[[str], None]
TAIL_LINES = 25


class DockerImages:
    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime

    async def labels(self, ref: str) -> dict[str, str] | None:
        """The image's labels ({} when it has none), or None when there is no such image."""
        try:
            data = await self.runtime.docker.images.inspect(ref)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise RuntimeFailure(f"cannot inspect image {ref}: {exc.message}") from exc
        return dict((data.get("Config") or {}).get("Labels") or {})

    async def pull(self, ref: str, timeout: float) -> None:
        """Pull ``ref``; RuntimeFailure when the registry does not deliver within timeout."""
        try:
            await asyncio.wait_for(self.runtime.docker.images.pull(ref), timeout)
        except TimeoutError as exc:
            raise RuntimeFailure(f"pulling {ref} took more than {timeout:.0f} s") from exc
        except DockerError as exc:
            raise RuntimeFailure(f"cannot pull {ref}: {exc.message}") from exc

    async def push(self, local: str, target: str, progress: Progress = print) -> None:
        """Tag ``local`` as ``target`` (which names its registry) and push it there."""
        repo, tag = transfer.split_ref(target)
        try:
            await self.runtime.docker.images.tag(local, repo, tag=tag)
        except DockerError as exc:
            raise RuntimeFailure(f"cannot tag {local} as {target}: {exc.message}") from exc

        async def say(line: str) -> None:
            progress(line)

        await transfer.push(self.runtime.docker, target, say)

    async def build(
        self,
        files: Mapping[str, Path | bytes],
        *,
        tag: str,
        dockerfile: str,
        buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        nocache: bool = False,
        progress: Progress = print,
    ) -> None:
        """Build ``tag`` from a context of ``files`` (name in the context: a file or its bytes),
        passing each output line to ``progress``. Intermediate containers are always removed."""
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        # On disk, not in memory: a context may hold a whole root filesystem (the local base).
        with tempfile.TemporaryFile(prefix="labspace-context.") as context:
            await asyncio.to_thread(_pack, files, context)
            context.seek(0)
            # The engine sends pieces of lines ("Step 2/5 : RUN x", then "\n"): pass on
            # whole lines, as `docker build` prints them.
            pending = ""

            def emit(line: str) -> None:
                tail.append(line)
                progress(line)

            try:
                async for chunk in self.runtime.docker.images.build(
                    fileobj=context, encoding="identity", tag=tag, path_dockerfile=dockerfile,
                    buildargs=buildargs, labels=labels, nocache=nocache, rm=True, forcerm=True,
                    stream=True,
                ):
                    *lines, pending = (pending + str(chunk.get("stream") or "")).split("\n")
                    for line in lines:
                        emit(line.rstrip("\r"))
                if pending:
                    emit(pending)
            except DockerError as exc:
                if pending:
                    emit(pending)
                last = "\n".join([*tail, exc.message])
                raise RuntimeFailure(f"building {tag} failed; last lines:\n{last}",
                                     detail=last) from exc


def _pack(files: Mapping[str, Path | bytes], out: IO[bytes]) -> None:
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, source in files.items():
            if isinstance(source, Path):
                tar.add(source, arcname=name, recursive=False)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(source), 0o644
                tar.addfile(info, io.BytesIO(source))
