"""The manager in-process on the real engine: what only the engine shows (a container that
comes back on another address)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from labspace.config import Settings
from labspace.hub import Hub, open_hub
from labspace.testing import remove_instance
from labspace.workspaces.states import State

pytestmark = pytest.mark.docker


@pytest.fixture
async def quick_hub(tmp_path: Path, jupyter_image: str,
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hub]:
    monkeypatch.setenv("LABSPACE_CONFIG", str(tmp_path / "none.toml"))
    instance = "m" + secrets.token_hex(4)
    settings = Settings(data_dir=tmp_path / "data", instance=instance, start_timeout=3,
                        docker_network=f"labspace-{instance}")
    hub = await open_hub(settings)
    try:
        yield hub
    finally:
        await hub.close()
        remove_instance(instance, settings.docker_network)


async def test_reconcile_follows_a_container_to_its_new_address(quick_hub: Hub) -> None:
    """After an engine restart a running container may come back on another address; the
    record (and so the proxy's route) follows it."""
    from labspace.workspaces.reconcile import reconcile

    hub = quick_hub
    hub.settings.start_timeout = 60
    await hub.users.create("ines")
    record = await hub.manager.create("ines", "moved", "jupyterlab")
    await hub.manager.start("ines", "moved")
    await hub.manager.wait_settled(record.id)
    running = await hub.store.get("ines", "moved")
    assert running.state == State.RUNNING and running.target
    real = running.target
    # What the hub remembers is stale: the container now answers on a near-identical address.
    stale = real.rsplit(":", 1)[0] + "1:8888"  # e.g. 172.18.0.2 -> 172.18.0.21
    await hub.store.transition(record.id, State.RUNNING, "test", target=stale)
    report = await reconcile(hub.manager)
    assert "ines/moved" in report.adopted
    assert (await hub.store.get("ines", "moved")).target == real
