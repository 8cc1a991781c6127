"""An app's definition: a path stays under the claim's own base URL whatever is typed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labspace.apps.model import AppDefinition
from labspace.apps.spec import base_url


def test_a_path_never_leaves_the_claim() -> None:
    # Leading slashes are dropped: "//evil.example/x" would be another host if kept.
    app = AppDefinition(name="intro", template="jupyterlab", path="//evil.example/x")
    assert app.path == "evil.example/x"
    assert (base_url("intro", "c0123456789abcdef") + app.path).startswith(
        "/apps/intro/c0123456789abcdef/")
    for bad in ("../hub/api", "lab/../../hub", "a\\b", "lab//x", "x\r\nSet-Cookie: a=b"):
        with pytest.raises(ValidationError):
            AppDefinition(name="intro", template="jupyterlab", path=bad)


def test_names_follow_the_rules() -> None:
    for bad in ("Intro", "a--b", "-a", "a" * 31):
        with pytest.raises(ValidationError):
            AppDefinition(name=bad, template="jupyterlab")
