"""Single flight: concurrent calls with one key, in one process, share one read, and every call
is answered by a read that began after it was made (docs/architecture.md §5.7).

Per key, at most one read runs at a time. A call that finds no read running reads at once. A
call that finds one running does not join it, since that read may have taken its snapshot
before a write this caller has already seen applied; it joins the *queued* flight instead,
which reads as soon as the running one ends, for every call that arrived meanwhile. So a burst
of any size costs two reads per key (the first call's, then everyone else's), and a sustained
storm one read at a time.

The first call of the queued flight runs its read; the others wait for it and get its result,
or its failure: the same exception type and message, raised anew in each thread and chained
to the original. Waits are bounded by ``wait_s``, the longest a read can take by its own time
bounds: the queued flight gives up with ``ReadModelUnavailable`` (503) when the running read
has not ended within it, and a waiting call when its flight has not ended within twice it. So
a stuck read never hangs anyone. Nothing is kept once a read ends.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from query_api.service_layer.ports import ReadModelUnavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Flight(Generic[V]):
    """One read and the calls it answers. ``go`` is set once it may read (the read before it
    ended); ``done`` once it has a result or an error. A flight that reads at once, with no
    read before it, has neither (``None``): nobody can wait for it, since a later call joins
    the queued flight (a miss then costs no ``Event`` objects, each a lock and a condition)."""

    go: threading.Event | None = None
    done: threading.Event | None = None
    result: V | None = None
    error: BaseException | None = None

    @classmethod
    def queued(cls) -> _Flight[V]:
        """A flight that waits for the read before it."""
        return cls(threading.Event(), threading.Event())


@dataclass
class _Slot(Generic[V]):
    """The flights of one key: the one reading, and the one queued behind it (if any)."""

    reading: _Flight[V]
    queued: _Flight[V] | None = None


class SingleFlight(Generic[K, V]):
    """Shares reads between concurrent calls with equal keys; see the module docstring.

    The key must hold everything that determines the result (for a page: the workspace, the
    filters, the sort, the position and the limit): two calls with equal keys may get one
    result.
    """

    def __init__(self, wait_s: float) -> None:
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._slots: dict[K, _Slot[V]] = {}
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """How many calls are waiting for a read (their own queued one, or another's) now."""
        with self._lock:
            return self._waiting

    def run(self, key: K, read: Callable[[], V]) -> V:
        """Return the result of a ``read()`` begun after this call: its own, or a concurrent
        call's with the same ``key``.

        Raises what that ``read`` raised, and ``ReadModelUnavailable`` when a wait passes its
        bound (module docstring).
        """
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                flight: _Flight[V] = _Flight()
                self._slots[key] = _Slot(flight)
                leads = True
            else:
                leads = slot.queued is None
                if slot.queued is None:
                    slot.queued = _Flight.queued()
                flight = slot.queued
                self._waiting += 1
        if slot is None:
            return self._read(key, flight, read)
        try:
            assert flight.done is not None  # a queued flight
            may_read = leads and self._may_read(key, flight)
            ended = may_read or flight.done.wait(2 * self._wait_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if may_read:
            return self._read(key, flight, read)
        if not ended:
            raise ReadModelUnavailable(f"A shared read did not end within {2 * self._wait_s:g} s.")
        if flight.error is not None:
            raise _follower_error(flight.error) from flight.error
        return flight.result  # type: ignore[return-value]  # set whenever error is not

    def _may_read(self, key: K, flight: _Flight[V]) -> bool:
        """Wait for the running read of ``key`` to end, at most ``wait_s``. Past it, the queued
        ``flight`` ends with ``ReadModelUnavailable`` for all its calls (returns ``False``)."""
        assert flight.go is not None  # a queued flight
        assert flight.done is not None
        if flight.go.wait(self._wait_s):
            return True
        with self._lock:
            if flight.go.is_set():  # promoted between the timeout and the lock
                return True
            self._slots[key].queued = None
        flight.error = ReadModelUnavailable(
            f"The read before this one did not end within {self._wait_s:g} s."
        )
        flight.done.set()
        return False

    def _read(self, key: K, flight: _Flight[V], read: Callable[[], V]) -> V:
        try:
            flight.result = read()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                slot = self._slots[key]
                if slot.queued is None:
                    del self._slots[key]
                else:
                    slot.reading, slot.queued = slot.queued, None
                    assert slot.reading.go is not None  # a queued flight
                    slot.reading.go.set()
            if flight.done is not None:
                flight.done.set()


def _follower_error(error: BaseException) -> BaseException:
    """What a waiting call raises for its flight's ``error``: a copy (same type and message), so
    threads never raise, and append tracebacks to, one shared exception object. An interrupt
    of the reading thread (``SystemExit`` from a gunicorn worker abort, ``KeyboardInterrupt``)
    is not the others' own: they get ``ReadModelUnavailable``, as for any read that did not
    end."""
    if not isinstance(error, Exception):
        return ReadModelUnavailable("The shared read was interrupted.")
    try:
        return copy.copy(error)
    except Exception:  # an exception type that cannot be rebuilt from its args
        return error
