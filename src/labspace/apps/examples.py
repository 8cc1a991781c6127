"""The two instant apps labspace ships as examples, both from the workspace image.

- ``notebook``: a JupyterLab of one's own, opened on a welcome notebook (template
  ``notebook-app``: the image's examples are copied into the empty home, so the notebook is
  the visitor's to edit and run).
- ``dashboard``: a page of a notebook's outputs (template ``dashboard-app``): the notebook runs
  when the pool starts the container, before anyone asks for it, so a click gets a finished
  page and runs no kernel.

``labspace app add --example notebook`` adds one; an app of one's own starts from a copy of
these with another template (docs/admin.md, "Instant apps", "The two examples").
"""

from __future__ import annotations

from labspace.apps.model import AppDefinition, PoolSettings

EXAMPLES: dict[str, AppDefinition] = {
    "notebook": AppDefinition(
        name="notebook",
        display_name="JupyterLab: welcome notebook",
        template="notebook-app",
        path="lab/tree/welcome.ipynb",
        pool=PoolSettings(spares=2),
    ),
    "dashboard": AppDefinition(
        name="dashboard",
        display_name="Prime numbers: a notebook dashboard",
        template="dashboard-app",
        # A page, not a session: many visitors, short visits, and a spare is cheap to make.
        pool=PoolSettings(spares=2, idle_timeout=600),
    ),
}
