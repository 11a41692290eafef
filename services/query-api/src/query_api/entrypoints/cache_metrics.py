"""Cache outcome metrics of the query API: ``contact_cache_lookups_total{outcome}``.

Every response that answers from the contact cache path carries ``X-Cache: hit | miss |
bypass`` (docs/architecture.md §6): a hit was served by Redis, a miss by PostgreSQL (and the cache
was
refilled), a bypass by PostgreSQL because Redis was unavailable. The header is the one place
that outcome is decided, so it is counted from there, after the response is built.
"""

from __future__ import annotations

from typing import Final

from flask import Flask, Response
from prometheus_client import Counter

from contacts_telemetry.metrics import MetricsRegistry

OUTCOMES: Final = frozenset({"hit", "miss", "bypass"})


class CacheMetrics:
    """``contact_cache_lookups_total{outcome}`` registered on ``registry.registry``."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.lookups = Counter(
            "contact_cache_lookups_total",
            "Contact reads by cache outcome: hit (Redis), miss (PostgreSQL, refilled), "
            "bypass (PostgreSQL, Redis unavailable).",
            ("outcome",),
            registry=registry.registry,
        )
        for outcome in OUTCOMES:
            self.lookups.labels(outcome)  # every series exists from the start, at 0


def init_cache_metrics(app: Flask, metrics: CacheMetrics) -> None:
    """Count the ``X-Cache`` outcome of every response of ``app`` that has one."""

    def count(response: Response) -> Response:
        outcome = response.headers.get("X-Cache")
        if outcome in OUTCOMES:
            metrics.lookups.labels(outcome).inc()
        return response

    app.after_request(count)
