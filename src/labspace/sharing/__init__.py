"""Sharing a workspace's ports by link: which ports listen, at which level each is shared,
and the admin's cap per template.

The proxy imports ``labspace.sharing.levels`` (stdlib only) to check each request; the rest
is the hub's (``service.py``: detection, validation, the cap; ``store.py``: the table).
"""
