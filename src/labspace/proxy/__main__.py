"""``python -m labspace.proxy``: the proxy process, kept lean (no CLI, ORM or web framework).

``labspace proxy`` execs this, so the long-running process imports only what it uses.
"""

from __future__ import annotations

from labspace.tuning import server_settings


def main() -> None:
    settings = server_settings("labspace proxy")
    from labspace.proxy.app import run_proxy
    from labspace.proxy.dbsource import DatabaseRouteSource

    run_proxy(settings, DatabaseRouteSource(settings.db_url))


if __name__ == "__main__":
    main()
