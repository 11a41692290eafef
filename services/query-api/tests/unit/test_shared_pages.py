"""Identical concurrent pages (list, search, export pages) share reads within a process: a
burst costs two reads (the first call's, then one for every call made while it ran), each call
is answered by a read begun after it, and nothing else shares a read (docs/architecture.md
§5.7)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import pytest

from contacts_domain.workspaces import DEFAULT_WORKSPACE as WS
from query_api.adapters.coalescing import CoalescingReadModel
from query_api.service_layer.listing import ListFilters, ListRequest, Position, Sort
from query_api.service_layer.ports import ReadModelUnavailable

SEARCH = ListRequest(Sort.parse("last_name"), ListFilters(q="ada"), 20)
BOUND_S = 10  # no test should get near it: it only turns a bug into a failure, not a hang


class HeldReadModel:
    """Holds every ``list`` call until ``release`` is set, then answers it with a page naming
    the call's arguments and number (or raises an ``error`` like the one given); records the
    calls."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, ListRequest, int]] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.error = error

    def list(self, workspace, request, limit):
        self.calls.append((workspace, request, limit))
        self.entered.set()
        assert self.release.wait(BOUND_S)
        if self.error is not None:
            raise type(self.error)(*self.error.args)  # a new one per read, as a real read
        return [f"{workspace}:{request.filters.q}:{limit}:{len(self.calls)}"]


def wait_until(condition) -> None:
    event = threading.Event()
    for _ in range(BOUND_S * 100):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached")


def storm(model: CoalescingReadModel, n: int, request: ListRequest = SEARCH) -> list[Future]:
    """``n`` concurrent identical calls; returns once the first reads and the others wait
    (for the read queued behind it)."""
    pool = ThreadPoolExecutor(n)
    futures = [pool.submit(model.list, WS, request, request.limit + 1) for _ in range(n)]
    pool.shutdown(wait=False)
    wait_until(lambda: model.waiting == n - 1)
    return futures


def test_a_storm_of_one_page_reads_twice_and_everyone_gets_a_read_begun_after_it():
    inner = HeldReadModel()
    model = CoalescingReadModel(inner, list_wait_s=BOUND_S)

    futures = storm(model, 50)
    inner.release.set()
    pages = [f.result(BOUND_S) for f in futures]

    assert inner.calls == [(WS, SEARCH, 21)] * 2
    assert sorted(map(tuple, pages)) == [("default:ada:21:1",)] + [("default:ada:21:2",)] * 49
    assert len({id(page) for page in pages}) == 50  # each caller may change its own list


def test_a_call_made_while_the_page_is_read_waits_for_a_read_of_its_own_time():
    """The read under way may have taken its snapshot before a write the caller has seen
    applied: the caller must get the read after it, never that one."""
    inner = HeldReadModel()
    model = CoalescingReadModel(inner, list_wait_s=BOUND_S)
    running = ThreadPoolExecutor(1).submit(model.list, WS, SEARCH, 21)
    assert inner.entered.wait(BOUND_S)

    later = ThreadPoolExecutor(1).submit(model.list, WS, SEARCH, 21)
    wait_until(lambda: model.waiting == 1)
    inner.release.set()

    assert running.result(BOUND_S) == ["default:ada:21:1"]
    assert later.result(BOUND_S) == ["default:ada:21:2"]


def test_the_readers_failure_is_every_waiters_failure_and_nobody_waits_longer():
    inner = HeldReadModel(error=ReadModelUnavailable("statement timeout"))
    model = CoalescingReadModel(inner, list_wait_s=BOUND_S)

    futures = storm(model, 20)
    inner.release.set()
    errors = [f.exception(BOUND_S) for f in futures]

    assert len(inner.calls) == 2
    assert {(type(e), str(e)) for e in errors} == {(ReadModelUnavailable, "statement timeout")}
    assert len({id(e) for e in errors}) == 20  # raised anew in each thread


def test_an_interrupted_reader_leaves_its_waiters_a_503_not_its_interrupt():
    inner = HeldReadModel(error=SystemExit(1))
    model = CoalescingReadModel(inner, list_wait_s=BOUND_S)

    futures = storm(model, 5)
    inner.release.set()
    errors = [type(f.exception(BOUND_S)).__name__ for f in futures]

    # The two readers' own threads are interrupted; the three others answer 503.
    assert sorted(errors) == ["ReadModelUnavailable"] * 3 + ["SystemExit"] * 2


def test_the_queued_read_gives_up_with_a_503_when_the_one_before_outlives_the_bound():
    inner = HeldReadModel()
    model = CoalescingReadModel(inner, list_wait_s=0.01)
    running = ThreadPoolExecutor(1).submit(model.list, WS, SEARCH, 21)
    assert inner.entered.wait(BOUND_S)

    with pytest.raises(ReadModelUnavailable, match=r"did not end within 0\.01 s"):
        model.list(WS, SEARCH, 21)

    inner.release.set()
    assert running.result(BOUND_S) == ["default:ada:21:1"]
    assert (len(inner.calls), model.waiting) == (1, 0)
    assert model.list(WS, SEARCH, 21) == ["default:ada:21:2"]  # nothing left behind


def test_a_page_asked_after_the_read_ended_is_read_again():
    inner = HeldReadModel()
    inner.release.set()
    model = CoalescingReadModel(inner, list_wait_s=BOUND_S)

    assert model.list(WS, SEARCH, 21) == ["default:ada:21:1"]
    assert model.list(WS, SEARCH, 21) == ["default:ada:21:2"]


AFTER = Position(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("workspace", "request_", "limit"),
    [
        pytest.param("acme", SEARCH, 21, id="another workspace"),
        pytest.param(WS, replace(SEARCH, filters=ListFilters(q="adb")), 21, id="another q"),
        pytest.param(WS, replace(SEARCH, filters=ListFilters(tags=("x",))), 21, id="a filter"),
        pytest.param(WS, replace(SEARCH, sort=Sort.parse("-last_name")), 21, id="another sort"),
        pytest.param(WS, replace(SEARCH, after=AFTER), 21, id="a cursor"),
        pytest.param(WS, replace(SEARCH, limit=5), 6, id="another limit"),
        pytest.param(WS, SEARCH, 501, id="another read size"),
    ],
)
def test_a_page_that_differs_in_anything_does_not_wait_for_anothers_read(
    workspace, request_, limit
):
    held = HeldReadModel()
    free = HeldReadModel()
    free.release.set()
    # The first call reaches ``held``, the next ``free``.
    model = CoalescingReadModel(_Routing(iter([held, free])), list_wait_s=0.01)
    leader = ThreadPoolExecutor(1).submit(model.list, WS, SEARCH, 21)
    assert held.entered.wait(BOUND_S)

    model.list(workspace, request_, limit)  # a follower would give up after 0.01 s instead

    assert free.calls == [(workspace, request_, limit)]
    held.release.set()
    leader.result(BOUND_S)


class _Routing:
    """Sends each ``list`` call to the next read model of ``readers``."""

    def __init__(self, readers) -> None:
        self._readers = readers

    def list(self, workspace, request, limit):
        return next(self._readers).list(workspace, request, limit)
