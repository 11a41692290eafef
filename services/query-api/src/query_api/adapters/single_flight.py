"""Single flight: concurrent calls with one key, in one process, share one call's result.

The first caller of a key (the leader) runs the read; callers of the same key that arrive while
it runs (followers) wait for it and get its result, or its failure: the same exception type and
message, raised anew in each follower's thread, chained to the leader's. A follower waits at
most ``wait_s`` seconds (the longest the leader's read can take by its own time bounds) and
then gives up with ``ReadModelUnavailable`` (503), so a stuck leader never hangs its followers.
A call that starts after the leader finished starts a new flight: nothing is kept, so a result
is never older than the call that asked for it (docs/architecture.md §5.7).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from query_api.service_layer.ports import ReadModelUnavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Flight(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    result: V | None = None
    error: BaseException | None = None


class SingleFlight(Generic[K, V]):
    """Runs at most one read per key at a time, in this process; see the module docstring.

    The key must hold everything that determines the result (for a page: the workspace, the
    filters, the sort, the position and the limit): two calls with equal keys get one result.
    """

    def __init__(self, wait_s: float) -> None:
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._flights: dict[K, _Flight[V]] = {}
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """How many calls are waiting for a leader's result right now."""
        with self._lock:
            return self._waiting

    def run(self, key: K, read: Callable[[], V]) -> V:
        """Return ``read()``, or the result of the flight of ``key`` already under way.

        Raises what the leader's ``read`` raised, and ``ReadModelUnavailable`` when that flight
        has not ended within ``wait_s`` seconds.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                self._waiting += 1
        if leader:
            return self._lead(key, flight, read)
        return self._follow(flight)

    def _lead(self, key: K, flight: _Flight[V], read: Callable[[], V]) -> V:
        try:
            flight.result = read()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _follow(self, flight: _Flight[V]) -> V:
        try:
            ended = flight.done.wait(self._wait_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not ended:
            raise ReadModelUnavailable(f"A shared read did not end within {self._wait_s:g} s.")
        if flight.error is not None:
            raise _follower_error(flight.error) from flight.error
        return flight.result  # type: ignore[return-value]  # set whenever error is not


def _follower_error(error: BaseException) -> BaseException:
    """What a follower raises for the leader's ``error``: a copy (same type and message), so
    threads never raise, and append tracebacks to, one shared exception object. An interrupt
    of the leader's thread (``SystemExit`` from a gunicorn worker abort, ``KeyboardInterrupt``)
    is not the followers' own: they get ``ReadModelUnavailable``, as for any read that did not
    end."""
    if not isinstance(error, Exception):
        return ReadModelUnavailable("The shared read was interrupted.")
    try:
        return copy.copy(error)
    except Exception:  # an exception type that cannot be rebuilt from its args
        return error
