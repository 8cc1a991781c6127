"""``python -m labspace.proxy``: the proxy process, kept lean (no CLI, ORM or web framework).

``labspace proxy`` execs this, so the long-running process imports only what it uses.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from labspace.config import load_settings
from labspace.tuning import limit_malloc_arenas


def main() -> None:
    limit_malloc_arenas()
    try:
        settings = load_settings()
    except ValidationError as error:
        sys.exit(f"labspace proxy: bad configuration: {error}")
    from labspace.proxy.app import run_proxy
    from labspace.proxy.dbsource import DatabaseRouteSource

    run_proxy(settings, DatabaseRouteSource(settings.db_url))


if __name__ == "__main__":
    main()
