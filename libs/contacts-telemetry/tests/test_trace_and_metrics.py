"""W3C traceparent validation and the metrics registry (single-process mode)."""

from __future__ import annotations

import pytest
from prometheus_client import Counter

from contacts_telemetry.metrics import MetricsRegistry
from contacts_telemetry.trace import valid_traceparent

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # invalid version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        GOOD + "\nX-Injected: 1",
    ],
)
def test_malformed_traceparents_are_dropped(value: str | None) -> None:
    assert valid_traceparent(value) is None


def test_a_valid_traceparent_is_kept() -> None:
    assert valid_traceparent(f" {GOOD} ") == GOOD


def test_registries_are_independent_and_render_their_metrics() -> None:
    first, second = MetricsRegistry(), MetricsRegistry()
    Counter("things_total", "Things.", registry=first.registry).inc(3)
    Counter("things_total", "Things.", registry=second.registry)  # no duplicate error
    assert b"things_total 3.0" in first.render()
    assert b"things_total 0.0" in second.render()
