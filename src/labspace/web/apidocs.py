"""The API's interactive docs (Swagger UI) at /hub/api/docs, with every asset served by the hub.

FastAPI's own docs page loads Swagger UI from a CDN, which an offline lab cannot reach. The
files come from the fastapi-offline wheel: it ships Swagger UI 5, which reads the OpenAPI 3.1
that FastAPI writes (swagger-ui-bundle ships 4.x, which refuses to render 3.1).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/hub/api/docs"
STATIC_URL = f"{DOCS_URL}/static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def assets_dir() -> Path:
    """The installed Swagger UI files (an error at start-up, not on the first visit)."""
    directory = Path(str(files("fastapi_offline").joinpath("static")))
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline ships no {', '.join(missing)} in {directory}")
    return directory


def add_api_docs(app: FastAPI) -> None:
    """Serve the docs page and its assets; create the app with ``docs_url=None``."""
    app.mount(STATIC_URL, StaticFiles(directory=assets_dir()), name="api-docs-static")
    openapi_url = app.openapi_url or "/hub/api/openapi.json"
    title = f"{app.title} API"

    @app.get(DOCS_URL, include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon.png",
            oauth2_redirect_url=None,  # the API takes bearer tokens, not OAuth2
        )
