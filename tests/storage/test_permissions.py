"""The data directory is private: created so, and repaired (with a warning) when it is not."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from labspace.config import Settings
from labspace.hub import bootstrap_admin, open_hub
from labspace.runtime.docker import DockerRuntime
from labspace.storage.permissions import InsecureDataDir, secure_data_dir
from tests.storage.conftest import Mount, remount

SECRETS = ("labspace.db", "labspace.db-wal", "labspace.db-shm", "secret_key", "admin-token")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    return Settings(data_dir=tmp_path / "data")


async def init(settings: Settings) -> None:
    """What `labspace init` and a hub's start do, checking the modes while the database is
    open (SQLite removes its -wal and -shm files when the last connection closes)."""
    hub = await open_hub(settings, DockerRuntime())  # the engine is never called
    try:
        await bootstrap_admin(hub)
        settings.signing_key()
        for name in SECRETS:
            assert mode(settings.data_dir / name) == 0o600, name
    finally:
        await hub.close()


async def test_a_fresh_data_dir_is_private(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    old_umask = os.umask(0o022)  # the usual one, which would give 0755 and 0644
    try:
        await init(settings)
    finally:
        os.umask(old_umask)
    assert mode(settings.data_dir) == 0o700
    for name in ("labspace.db", "secret_key", "admin-token"):
        assert mode(settings.data_dir / name) == 0o600, name
    assert not [r for r in caplog.records if r.name == "labspace.storage.permissions"]


async def test_loose_modes_are_repaired_with_a_warning(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await init(settings)
    data = settings.data_dir
    # As a careless restore or copy leaves them: readable by everyone.
    os.chmod(data, 0o755)
    for name in ("labspace.db", "secret_key", "admin-token"):
        os.chmod(data / name, 0o644)
    (data / "labspace.db-wal").touch(mode=0o644)
    os.chmod(data / "labspace.db-wal", 0o644)

    with caplog.at_level(logging.WARNING, logger="labspace.storage.permissions"):
        await init(settings)

    assert mode(data) == 0o700
    for name in ("labspace.db", "secret_key", "admin-token"):
        assert mode(data / name) == 0o600, name
    warnings = [r.getMessage() for r in caplog.records if r.name == "labspace.storage.permissions"]
    assert len(warnings) == 5, warnings
    assert all(r.levelno == logging.WARNING for r in caplog.records
               if r.name == "labspace.storage.permissions")
    for path, old in [(data, "0755"), (data / "secret_key", "0644"),
                      (data / "admin-token", "0644"), (data / "labspace.db", "0644"),
                      (data / "labspace.db-wal", "0644")]:
        new = "0700" if path == data else "0600"
        assert any(f"{path} was mode {old}" in w and f"changed to {new}" in w
                   for w in warnings), (path, warnings)


def test_secure_data_dir_reports_what_it_repaired(settings: Settings) -> None:
    """The function the proxy calls at its start: nothing to say when all is private."""
    assert secure_data_dir(settings) == []
    assert mode(settings.data_dir) == 0o700
    key = settings.data_dir / "secret_key"
    key.write_text("k")
    os.chmod(key, 0o640)
    assert secure_data_dir(settings) == [
        f"{key} was mode 0640, readable by others: changed to 0600"]
    assert secure_data_dir(settings) == []
    os.chmod(key, 0o400)  # stricter than needed is fine: never widened
    assert secure_data_dir(settings) == []
    assert mode(key) == 0o400


def test_a_sqlite_database_outside_the_data_dir_is_checked(
    settings: Settings, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "db" / "lab.db"
    elsewhere.parent.mkdir()
    elsewhere.touch(mode=0o666)
    os.chmod(elsewhere, 0o666)
    custom = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{elsewhere}"})
    assert secure_data_dir(custom) == [
        f"{elsewhere} was mode 0666, readable by others: changed to 0600"]


def test_a_failed_repair_refuses_and_says_what_to_run(settings: Settings, tmpfs: Mount) -> None:
    data = tmpfs("")
    (data / "admin-token").write_text("t")
    os.chmod(data / "admin-token", 0o644)
    os.chmod(data, 0o700)
    remount(data, "ro")  # chmod fails even for root
    custom = settings.model_copy(update={"data_dir": data})
    with pytest.raises(InsecureDataDir) as raised:
        secure_data_dir(custom)
    message = raised.value.message
    assert f"{data / 'admin-token'} is readable by others (mode 0644)" in message
    assert f"run `chmod 600 {data / 'admin-token'}`" in message
