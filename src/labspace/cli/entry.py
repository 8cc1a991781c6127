"""The `labspace` command's entry point: ssh's ProxyCommand (`labspace tunnel OWNER/NAME
--url URL`) goes the fast way (labspace/remote/quick.py) without loading the full CLI, since
every SSH connection waits for it; everything else goes to labspace.cli.main."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["tunnel"]:
        from labspace.remote.quick import run

        code = run(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    from labspace.cli.main import main as full_cli

    full_cli()


if __name__ == "__main__":
    main()
