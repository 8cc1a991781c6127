"""Request bodies bound for the hub, capped at the largest the hub accepts (MAX_HUB_BODY).

The proxy refuses a bigger body itself: by Content-Length before it connects to the hub, or,
for a chunked body, as soon as the bytes it streamed pass the cap. The hub checks its own,
smaller caps per route (web/limits.py); this keeps the flood off the hub's connection at all.

Workspace bodies (uploads into JupyterLab, of any size) are not capped: they are streamed,
never buffered, and only after the proxy authenticated the caller, before reading a byte.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from aiohttp import StreamReader, web

from labspace.hubedge import MAX_HUB_BODY, MiB
from labspace.proxy import pages


class CappedBody:
    """The body as it streams in, ending with BodyTooLarge once more than ``limit`` came."""

    def __init__(self, content: StreamReader, limit: int = MAX_HUB_BODY) -> None:
        self.content = content
        self.limit = limit
        self.exceeded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self.content.iter_any():
            size += len(chunk)
            if size > self.limit:
                self.exceeded = True
                raise BodyTooLarge(f"request body over {self.limit} bytes")
            yield chunk


class BodyTooLarge(Exception):
    """A capped body passed its limit (the upstream request then fails)."""


def too_large_for_hub(request: web.BaseRequest) -> bool:
    """By Content-Length alone, before anything is read."""
    length = request.content_length
    return length is not None and length > MAX_HUB_BODY


def too_large(request: web.BaseRequest, limit: int = MAX_HUB_BODY) -> web.Response:
    """413, in the hub's own shapes: a page for browsers, ``{"error": ...}`` for the rest."""
    message = f"the request body is too large (at most {limit // MiB} MiB)"
    if pages.wants_html(request) and not request.path.startswith("/hub/api/"):
        return pages.html_page(413, "Request too large", f"<p>{message}.</p>")
    return web.Response(status=413, text=json.dumps({"error": message}),
                        content_type="application/json", headers={"Cache-Control": "no-store"})
