"""The configuration reference in docs/admin.md is the one generated from the settings."""

from pathlib import Path

from labspace.config import reference_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_admin_guide_has_the_current_configuration_reference() -> None:
    text = (DOCS / "admin.md").read_text()
    documented = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->")[0]
    assert documented.strip() == reference_markdown().strip(), (
        "regenerate with: labspace config reference"
    )
