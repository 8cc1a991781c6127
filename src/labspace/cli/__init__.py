"""The ``labspace`` command line: one typer sub-app per file, errors mapped at the edge."""
