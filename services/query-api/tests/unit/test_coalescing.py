"""Single-flight: concurrent misses on one id share reads, each begun after the call (two
reads for a burst: the running one and one for everyone who came during it)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.adapters.coalescing import CoalescingReadModel
from query_api.adapters.single_flight import _Flight, _Slot
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


def test_concurrent_reads_of_one_id_share_two_reads():
    model = CoalescingReadModel(SlowReadModel(result="row"))

    results = _storm(model, "c1", 16)

    assert results == ["row"] * 16
    assert model._inner.calls == 2  # the first call's, then one for the 15 that came during it


def test_concurrent_reads_share_the_failure_too():
    model = CoalescingReadModel(SlowReadModel(error=ReadModelUnavailable("down")))

    results = _storm(model, "c1", 8)

    assert all(isinstance(r, ReadModelUnavailable) for r in results)
    assert model._inner.calls == 2


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
    assert model._contacts._slots == {}


def test_the_same_id_in_two_workspaces_is_two_flights():
    inner = SlowReadModel(result="row")
    inner.release.set()
    model = CoalescingReadModel(inner)
    model._contacts._slots[(WS, "c1")] = _Slot(_Flight())  # c1 of the default workspace read now

    assert model.get("acme", "c1") == "row"  # not made to wait for the other workspace's read

    assert (inner.calls, inner.workspaces) == (1, ["acme"])


class VersionedReadModel:
    """A read model whose ``get`` takes its snapshot (the stored version) when it begins, then
    blocks until released: a read that began before a write returns the old version."""

    def __init__(self) -> None:
        self.version = 1
        self.began: list[int] = []
        self.first_began = threading.Event()
        self.release = threading.Event()

    def get(self, workspace, contact_id):
        snapshot = self.version
        self.began.append(snapshot)
        self.first_began.set()
        assert self.release.wait(5)
        return snapshot


def test_a_read_never_gets_a_snapshot_taken_before_it_was_asked():
    # Issue 16: a caller that has seen version 2 applied must not be served the read of
    # version 1 that was already under way when it asked (read-your-writes).
    inner = VersionedReadModel()
    model = CoalescingReadModel(inner)
    with ThreadPoolExecutor(2) as pool:
        before = pool.submit(model.get, WS, "c1")
        assert inner.first_began.wait(5)
        inner.version = 2  # the write is applied; the caller below has seen it
        after = pool.submit(model.get, WS, "c1")
        tick = threading.Event()
        for _ in range(5000):  # until the second call waits (at most ~5 s)
            if model.waiting:
                break
            tick.wait(0.001)
        inner.release.set()

        assert before.result(5) == 1
        assert after.result(5) == 2
    assert inner.began == [1, 2]
