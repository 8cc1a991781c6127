"""``python -m labspace.web``: the hub process, without the CLI's imports.

``labspace hub`` execs this, so the long-running process imports only what it uses.
"""

from __future__ import annotations

from labspace.tuning import server_settings


def main() -> None:
    settings = server_settings("labspace hub")
    from labspace.web.app import run_hub

    run_hub(settings)


if __name__ == "__main__":
    main()
