"""The public proxy: one port for the hub (/hub/) and every workspace (/user/<u>/<w>/).

It runs as its own process so open sessions survive a hub restart, and it decides every
request alone: routes and credentials come from a RouteSource (the database), cached.
"""
