"""Talking to a real JupyterLab through the proxy: kernels over WebSocket."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import aiohttp


def execute_request(code: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    message = {
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3",
                   "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }
    return msg_id, json.dumps(message)


async def run_code(ws: aiohttp.ClientWebSocketResponse, code: str, timeout: float = 60) -> str:
    """Execute ``code`` on an open kernel channel; return its text/plain result."""
    msg_id, payload = execute_request(code)
    await ws.send_str(payload)
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"kernel channel closed: {message}")
            data = json.loads(message.data)
            if data.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = data["header"]["msg_type"]
            if kind == "execute_result":
                return str(data["content"]["data"]["text/plain"])
            if kind == "error":
                raise AssertionError(f"kernel error: {data['content']}")


async def open_kernel(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str]
) -> aiohttp.ClientWebSocketResponse:
    """Start a kernel at ``base`` (…/user/<o>/<w>/) and open its channels WebSocket."""
    async with session.post(base + "api/kernels", json={"name": "python3"},
                            headers=headers) as response:
        assert response.status == 201, await response.text()
        kernel = await response.json()
    ws_url = base.replace("http://", "ws://") + f"api/kernels/{kernel['id']}/channels"
    return await session.ws_connect(ws_url, headers=headers, max_msg_size=0)
