"""``labspace image``: build workspace images (works without a running hub)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(no_args_is_help=True, help="Build workspace images.")
console = Console()


class Base(StrEnum):
    auto = "auto"
    registry = "registry"
    debootstrap = "debootstrap"


@app.command("build")
def build(
    name: Annotated[str, typer.Argument(help="Image to build (known: jupyterlab, node-guard).")
                    ] = "jupyterlab",
    tag: Annotated[
        str | None, typer.Option("--tag", help="Image tag (default: labspace/<name>:latest).")
    ] = None,
    base: Annotated[
        Base,
        typer.Option("--base", help="auto: pull debian:bookworm-slim, else debootstrap "
                     "a Debian base locally; registry or debootstrap: only that way."),
    ] = Base.auto,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild without the layer cache even when "
                           "the image is up to date.")
    ] = False,
    push: Annotated[
        str | None, typer.Option("--push", metavar="REGISTRY",
                                 help="Then push it to REGISTRY (host[:port], e.g. "
                                 "registry.lab:5000), where swarm nodes pull it from.")
    ] = None,
) -> None:
    """Build a workspace image (skipped when it is already up to date). Prints the tag, or
    with --push the registry's reference to put in labspace.toml."""
    from labspace.errors import InvalidInput
    from labspace.images.build import IMAGES, build_image, push_image, registry_ref

    if push is not None:
        registry_ref("x", push)  # a bad registry is refused before a long build

    if name not in IMAGES:
        raise InvalidInput(f"unknown image {name!r} (known: {', '.join(sorted(IMAGES))})")
    with console.status(f"building {name}…", spinner="dots") as status:

        def progress(line: str) -> None:
            console.print(escape(line), highlight=False, soft_wrap=True)
            status.update(f"building {name}: {escape(line[:70])}")

        built = build_image(name, tag=tag, base=base.value, force=force, progress=progress)
        if push is not None:

            def pushing(line: str) -> None:  # bytes on the spinner, the outcome printed
                status.update(escape(line))
                if line.startswith("pushed"):
                    console.print(escape(line), highlight=False)

            built = push_image(built, push, progress=pushing)
    console.print(f"[green]✓[/] {built}", highlight=False)
