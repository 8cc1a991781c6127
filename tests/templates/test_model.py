"""Template validation: what a template may ask the proxy to send."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from labspace.templates.model import AppSpec


def test_the_default_secret_header_is_valid() -> None:
    app = AppSpec(command=["app"])
    assert (app.secret_header, app.secret_value) == ("Authorization", "token {secret}")
    assert AppSpec(command=["app"], secret_header="X-App-Token",
                   secret_value="{secret}\tv1").secret_header == "X-App-Token"


@pytest.mark.parametrize("name", ["X Bad", "X-Bad:", "", "Bad\r\nX-Injected", "Héader",
                                  "Host", "content-length", "Transfer-Encoding", "Cookie",
                                  "X-Forwarded-For", "X-Labspace-Proxy"])
def test_secret_header_names_must_be_tokens_the_proxy_may_send(name: str) -> None:
    with pytest.raises(ValidationError, match="secret_header"):
        AppSpec(command=["app"], secret_header=name)


@pytest.mark.parametrize("value", ["token {secret}\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b",
                                   "a\x7fb"])
def test_secret_values_must_have_no_control_characters(value: str) -> None:
    with pytest.raises(ValidationError, match="secret_value"):
        AppSpec(command=["app"], secret_value=value)
