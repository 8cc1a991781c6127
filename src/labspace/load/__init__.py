"""The live load page's data: one sampling loop over the servers and their workspaces
(collector.py), shared by every page that watches (feed.py). It reads the engine only
through labspace.runtime and knows nothing of HTTP."""

from labspace.load.collector import LoadCollector
from labspace.load.feed import Frame, LoadFeed, Watcher, open_feed
from labspace.load.model import GpuReading, GpuReadings, ServerLoad, Snapshot, WorkspaceLoad

__all__ = [
    "Frame",
    "GpuReading",
    "GpuReadings",
    "LoadCollector",
    "LoadFeed",
    "ServerLoad",
    "Snapshot",
    "Watcher",
    "WorkspaceLoad",
    "open_feed",
]
