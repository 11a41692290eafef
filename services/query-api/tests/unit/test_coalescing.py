"""Single-flight: concurrent misses on one id read the read model once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.adapters.coalescing import CoalescingReadModel, _Flight
from query_api.service_layer.ports import ReadModelUnavailable


class SlowReadModel:
    """Blocks every ``get`` until released, counting calls."""

    def __init__(self, result=None, error=None) -> None:
        self.calls = 0
        self.workspaces: list[str] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.result, self.error = result, error

    def get(self, workspace, contact_id):
        self.calls += 1
        self.workspaces.append(workspace)
        self.entered.set()
        assert self.release.wait(5)
        if self.error:
            raise self.error
        return self.result

    def list(self, workspace, request, limit):
        return []


def _storm(model, contact_id: str, n: int, workspaces=(WS,)):
    inner = model._inner
    with ThreadPoolExecutor(n) as pool:
        futures = [
            pool.submit(model.get, workspaces[i % len(workspaces)], contact_id) for i in range(n)
        ]
        assert inner.entered.wait(5)
        # Give the followers time to queue behind the leader before it finishes.
        threading.Event().wait(0.05)
        inner.release.set()
        return [f.exception() or f.result() for f in futures]


def test_concurrent_reads_of_one_id_share_one_read():
    model = CoalescingReadModel(SlowReadModel(result="row"))

    results = _storm(model, "c1", 16)

    assert results == ["row"] * 16
    assert model._inner.calls == 1


def test_concurrent_reads_share_the_failure_too():
    model = CoalescingReadModel(SlowReadModel(error=ReadModelUnavailable("down")))

    results = _storm(model, "c1", 8)

    assert all(isinstance(r, ReadModelUnavailable) for r in results)
    assert model._inner.calls == 1


def test_later_reads_are_not_served_a_stale_flight():
    inner = SlowReadModel(result="row")
    inner.release.set()
    model = CoalescingReadModel(inner)

    model.get(WS, "c1")
    model.get(WS, "c1")

    assert inner.calls == 2


def test_list_passes_through():
    assert CoalescingReadModel(SlowReadModel()).list(WS, None, 1) == []


@pytest.mark.parametrize("n", [1, 2])
def test_flights_are_forgotten(n):
    inner = SlowReadModel(result="row")
    inner.release.set()
    model = CoalescingReadModel(inner)
    for _ in range(n):
        model.get(WS, "c1")
    assert model._flights == {}


def test_the_same_id_in_two_workspaces_is_two_flights():
    inner = SlowReadModel(result="row")
    inner.release.set()
    model = CoalescingReadModel(inner)
    model._flights[(WS, "c1")] = _Flight()  # a read of c1 in the default workspace in flight

    assert model.get("acme", "c1") == "row"  # not made to wait for the other workspace's read

    assert (inner.calls, inner.workspaces) == (1, ["acme"])
