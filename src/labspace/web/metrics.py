"""``GET /hub/metrics``: the hub's and the proxy's metrics in Prometheus' text format.

One address to scrape: the hub renders its own (labspace/metrics.py) and appends the
proxy's, which it asks over the proxy's control socket (never on the public port); when the
proxy does not answer, ``labspace_proxy_up`` is 0 and the hub's half is still served.

Prometheus cannot log in, so besides an administrator's session or API token the route takes
``Authorization: Bearer <metrics_token>`` when the setting is made, compared in constant
time. That token opens nothing else: it is no API token, and the API does not know it.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

# The classic text format: every labspace name is plain ASCII, so 0.0.4 says it all, and
# Prometheus servers of any version read it.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from labspace.errors import NotAuthenticated, NotFound, PermissionDenied
from labspace.hub import Hub
from labspace.metrics import proxy_exposition, with_proxy
from labspace.web.deps import HubDep, optional_caller

router = APIRouter()


def _is_metrics_token(request: Request, hub: Hub) -> bool:
    expected = hub.settings.metrics_token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if not expected or scheme.lower() != "bearer" or not value:
        return False
    # Bytes: compare_digest refuses str with characters beyond ASCII, and a header may hold
    # them. Constant time: the answer must not tell how much of a guess was right.
    return hmac.compare_digest(value.encode(), expected.encode())


async def _check(request: Request, hub: Hub) -> None:
    if _is_metrics_token(request, hub):
        return
    caller = await optional_caller(request)
    if caller is None:
        raise NotAuthenticated("send the metrics token (Authorization: Bearer ...) or log in "
                               "as an administrator")
    if not caller.is_admin:
        raise PermissionDenied("administrators only")


@router.get("/hub/metrics", include_in_schema=False)
async def metrics(request: Request, hub: HubDep) -> Response:
    await _check(request, hub)
    if hub.metrics is None:
        raise NotFound("this hub keeps no metrics")
    own = await hub.metrics.exposition()
    body = with_proxy(own, await proxy_exposition(hub.settings.control_socket))
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4,
                    headers={"Cache-Control": "no-store"})
