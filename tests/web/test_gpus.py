"""The API and the workspace page say which GPUs a workspace holds and whether it shares
them (the whole hub app in-process, its GPUs from recorded NVML answers)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from labspace.gpus import GpuService, NvmlSource
from labspace.templates.model import LimitSpec
from labspace.testing import FakeRuntime
from labspace.testing.nvml import FakeNvml
from tests.web.conftest import hub_of

RECORDING = Path(__file__).parents[1] / "gpus" / "recordings" / "2gpus-mig-off.json"


async def settle(client: httpx.AsyncClient, name: str) -> dict[str, object]:
    for _ in range(300):
        body: dict[str, object] = (await client.get(f"/hub/api/workspaces/ada/{name}")).json()
        if body["state"] not in ("pending", "starting", "stopping"):
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"ada/{name} did not settle: {body}")


async def test_the_api_and_the_page_show_the_gpus(
        api: tuple[httpx.AsyncClient, FakeRuntime]) -> None:
    client, _ = api
    hub = hub_of(client)
    nvml = FakeNvml(json.loads(RECORDING.read_text())["devices"])
    hub.gpus = hub.manager.gpus = GpuService(NvmlSource(nvml))
    await hub.gpus.open()
    uuids = [str(d["uuid"]) for d in nvml.devices or []]
    base = await hub.templates.get("jupyterlab")
    for name, limits in (("gpu", LimitSpec(gpus=1)), ("shared", LimitSpec(shared_gpu=True))):
        await hub.templates.add(base.model_copy(update={
            "name": name, "display_name": name, "limits": limits}), replace=False)
    for name, template in (("own", "gpu"), ("part", "shared"), ("none", "jupyterlab")):
        made = await client.post("/hub/api/workspaces", json={"name": name,
                                                              "template": template})
        assert made.status_code == 201, made.text
    own, part, none = [await settle(client, name) for name in ("own", "part", "none")]
    assert (own["state"], own["gpus"], own["gpu_shared"]) == ("running", uuids[:1], False)
    assert (part["gpus"], part["gpu_shared"]) == (uuids[1:], True)  # the one not held whole
    assert (none["gpus"], none["gpu_shared"]) == ([], False)
    page = await client.get("/hub/workspaces/ada/part")
    assert page.status_code == 200 and uuids[1] in page.text
    assert "shared with other workspaces" in page.text
    assert "yours alone" in (await client.get("/hub/workspaces/ada/own")).text
    assert 'id="gpus"' not in (await client.get("/hub/workspaces/ada/none")).text
    await client.post("/hub/api/workspaces/ada/own/stop")
    assert (await client.get("/hub/api/workspaces/ada/own")).json()["gpus"] == []
