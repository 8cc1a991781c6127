"""The hub's FastAPI application factory and its server entry point."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from labspace import __version__
from labspace.config import Settings
from labspace.errors import LabspaceError
from labspace.hub import Hub, open_hub
from labspace.hubedge import proxy_proof
from labspace.identity.hostauth import HostSigner
from labspace.origins import Origins
from labspace.runtime import Runtime
from labspace.web.forwarded import TrustedForwarding
from labspace.web.limits import BodyLimits

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "pages")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/hub/api/") or "text/html" not in request.headers.get(
        "accept", ""
    )


def error_response(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    if status == 401:
        from urllib.parse import quote

        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Response(status_code=303, headers={
            "Location": f"/hub/login?next={quote(back, safe='/')}"})
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "caller": None},
        status_code=status,
    )


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the hub app; services are opened in the lifespan, not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub: Hub = await open_hub(settings, runtime)
        app.state.hub = hub
        app.state.signing_key = settings.signing_key()
        app.state.host_signer = HostSigner(app.state.signing_key)  # tickets to workspace hosts
        await hub.start_background()
        try:
            yield
        finally:
            await hub.close()

    app = FastAPI(
        title="labspace",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # web/apidocs.py serves it with its assets (no CDN)
        redoc_url=None,
        openapi_url="/hub/api/openapi.json",
    )
    app.state.settings = settings
    # Worked out once: settings.url may ask the system for its host name.
    app.state.origins = Origins(settings.url, settings.apps_domain)
    app.state.templates = templates

    @app.exception_handler(LabspaceError)
    async def labspace_error(request: Request, error: LabspaceError) -> Response:
        if error.http_status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, error.detail or error)
        return error_response(request, error.http_status, error.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        return error_response(request, 422, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        # Starlette's own refusals (an unparsable body, a wrong method) in our error shape.
        response = error_response(request, error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(404)
    async def not_found(request: Request, _error: Exception) -> Response:
        return error_response(request, 404, "there is nothing at this address")

    from labspace.web import (
        api,
        apidocs,
        apppages,
        apps,
        audit,
        claims,
        clilogin,
        join,
        login,
        metrics,
        nodes,
        oidc,
        open,
        pages,
        ports,
        sshkeys,
        userspages,
        workshoppages,
        workshops,
    )

    apidocs.add_api_docs(app)
    # First: routes are matched in order, and a class rush's clicks are the hub's hottest
    # requests (matching past every other route cost a fifth of a claim's time).
    app.include_router(claims.router)
    app.include_router(api.router)
    app.include_router(nodes.router)
    app.include_router(login.router)
    app.include_router(oidc.router)
    app.include_router(pages.router)
    app.include_router(userspages.router)
    app.include_router(open.router)
    app.include_router(sshkeys.router)
    app.include_router(ports.router)
    app.include_router(clilogin.router)
    app.include_router(audit.router)
    app.include_router(workshops.router)
    app.include_router(workshoppages.router)
    app.include_router(join.router)
    app.include_router(apps.router)
    app.include_router(apppages.router)
    from labspace.web import quotas

    app.include_router(quotas.router)
    from labspace.web import load as load_page

    app.include_router(load_page.router)
    app.include_router(metrics.router)
    app.mount("/hub/static", StaticFiles(directory=HERE / "static"), name="static")
    # The last added runs first: find out who the client is, then keep its bodies in bounds.
    app.add_middleware(BodyLimits, session_cookies=(settings.session_cookie,),
                       answer=error_response)
    app.add_middleware(TrustedForwarding, proof=lambda: proxy_proof(settings.signing_key))
    return app


def run_hub(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.hub_host,
        port=settings.hub_port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        proxy_headers=False,  # TrustedForwarding believes only the proxy (web/forwarded.py)
        timeout_graceful_shutdown=5,
    )


