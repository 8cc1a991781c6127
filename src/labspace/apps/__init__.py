"""Instant apps: pools of pre-started, health-checked containers handed out by a link.

``model`` (what an app is), ``store`` (apps and their containers in the database),
``pool`` (keeping spares ready, handing them out, culling), ``queue`` (who waits for a spare).
"""
