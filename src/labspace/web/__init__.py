"""The hub's web server: server-rendered pages under /hub/ and the REST API under /hub/api/."""

from labspace.web.app import create_app

__all__ = ["create_app"]
