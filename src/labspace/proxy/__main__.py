"""``python -m labspace.proxy``: the proxy process, kept lean (no CLI, ORM or web framework).

``labspace proxy`` execs this, so the long-running process imports only what it uses.
"""

from __future__ import annotations

import sys

from labspace.tuning import server_settings


def main() -> None:
    settings = server_settings("labspace proxy")
    from labspace.storage.permissions import InsecureDataDir, secure_data_dir

    try:
        secure_data_dir(settings)  # the database it reads holds every workspace's secret
    except InsecureDataDir as error:
        sys.exit(f"labspace proxy: {error}")
    from labspace.proxy.dbsource import DatabaseRouteSource
    from labspace.proxy.process import run_proxy

    run_proxy(settings, DatabaseRouteSource(settings.db_url))


if __name__ == "__main__":
    main()
