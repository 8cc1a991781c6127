"""The homes' filesystem must be mounted nosuid,nodev; the hub says so when it is not."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from labspace.config import Settings
from labspace.hub import open_hub
from labspace.runtime.docker import DockerRuntime
from labspace.storage.mounts import homes_mount_problem, mount_problem
from tests.storage.conftest import Mount

HOMES = Path("/srv/homes")


def statvfs_with(flags: int) -> os.statvfs_result:
    return os.statvfs_result((4096, 4096, 100, 50, 50, 100, 50, 50, flags, 255))


def test_a_mount_with_both_flags_is_fine() -> None:
    assert mount_problem(HOMES, statvfs_with(os.ST_NOSUID | os.ST_NODEV | os.ST_RDONLY)) is None


@pytest.mark.parametrize(
    ("flags", "missing"),
    [(0, "nosuid,nodev"), (os.ST_NODEV, "nosuid"), (os.ST_NOSUID, "nodev")],
)
def test_a_missing_flag_is_named_with_the_fix(flags: int, missing: str) -> None:
    problem = mount_problem(HOMES, statvfs_with(flags))
    assert problem is not None
    assert f"homes ({HOMES}) are on a filesystem mounted without {missing}:" in problem
    assert "mount it with `nosuid,nodev`" in problem
    assert "root squash" in problem


def test_real_mounts(tmpfs: Mount) -> None:
    safe, unsafe = tmpfs("nosuid,nodev"), tmpfs("")
    assert homes_mount_problem(safe) is None
    # Homes that do not exist yet are judged by the filesystem they will be created on.
    assert homes_mount_problem(safe / "homes" / "later") is None
    problem = homes_mount_problem(unsafe / "homes")
    assert problem is not None and "without nosuid,nodev" in problem


async def test_the_hub_warns_at_start(
    tmp_path: Path, tmpfs: Mount, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    for options, warned in (("nosuid,nodev", False), ("", True)):
        caplog.clear()
        homes = tmpfs(options)
        settings = Settings(data_dir=tmp_path / f"data-{warned}", homes_dir=homes)
        with caplog.at_level(logging.WARNING, logger="labspace.storage.mounts"):
            hub = await open_hub(settings, DockerRuntime())
            await hub.close()
        messages = [r.getMessage() for r in caplog.records if r.name == "labspace.storage.mounts"]
        if warned:
            assert len(messages) == 1 and "nosuid,nodev" in messages[0], messages
        else:
            assert messages == []
