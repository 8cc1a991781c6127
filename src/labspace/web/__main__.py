"""``python -m labspace.web``: the hub process, without the CLI's imports.

``labspace hub`` execs this, so the long-running process imports only what it uses.
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
        sys.exit(f"labspace hub: bad configuration: {error}")
    from labspace.web.app import run_hub

    run_hub(settings)


if __name__ == "__main__":
    main()
