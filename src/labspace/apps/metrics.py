"""The instant-app pools' figures for Prometheus, read from the pools at scrape time.

The pools already keep what an operator wants to see (apps/pool.py): the spares, starts,
claims and queue of each pool, its claim latencies (``Pool.latency``) and why containers
ended (``Pool.ended``). A collector turns them into metric families when Prometheus asks,
so a claim, the hot path, does no metrics work of its own. A pool's counters begin at 0 when
the hub starts or the app is created again, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from labspace.apps.pool import AppPools
from labspace.apps.queue import LATENCY_BOUNDS


class PoolCollector(Collector):
    def __init__(self, pools: AppPools) -> None:
        self.pools = pools

    def collect(self) -> Iterator[Metric]:
        containers = GaugeMetricFamily(
            "labspace_app_containers", "Instant-app containers by pool and state (ready "
            "spares, starting, claimed)", labels=["app", "state"])
        queued = GaugeMetricFamily(
            "labspace_app_queued", "Browsers waiting for a spare, by pool", labels=["app"])
        claims = CounterMetricFamily(
            "labspace_app_claims", "Claims handed out (at once or from the queue)",
            labels=["app"])
        ended = CounterMetricFamily(
            "labspace_app_containers_ended", "Instant-app containers that ended, by why "
            "(idle, max_age, exited, refreshed, drained, ...)", labels=["app", "reason"])
        latency = HistogramMetricFamily(
            "labspace_app_claim_latency_seconds", "Seconds from a claim to its container "
            "being handed over (queued claims wait for a spare)", labels=["app"])
        for name in self.pools.names():
            pool = self.pools.pool(name)
            containers.add_metric([name, "ready"], len(pool.ready))
            containers.add_metric([name, "starting"], len(pool.starting))
            containers.add_metric([name, "claimed"], len(pool.claimed))
            queued.add_metric([name], len(pool.queue))
            histogram = pool.latency
            claims.add_metric([name], histogram.count)
            for reason, count in sorted(pool.ended.items()):
                ended.add_metric([name, reason.replace(" ", "_")], count)
            cumulative, running = [], 0
            for bound, count in zip((*LATENCY_BOUNDS, float("inf")), histogram.buckets,
                                    strict=True):
                running += count
                cumulative.append((_le(bound), float(running)))
            latency.add_metric([name], cumulative, histogram.total)
        yield from (containers, queued, claims, ended, latency)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
