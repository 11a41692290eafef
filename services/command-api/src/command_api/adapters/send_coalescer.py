"""Group commit of single sends: concurrent ``publish`` calls share ``SendMessageBatch`` calls.

Issue 13 item 4: a POST's CPU was ~2.5 ms, ~0.9 ms of it botocore's ``SendMessage``. A
``SendMessageBatch`` of 10 entries costs about as much botocore work as one ``SendMessage``, so
single sends are coalesced:

* a send requested while no call is in flight is made at once (no added latency when idle);
* sends requested while a call is in flight wait, and go together in the next call (at most
  ``max_entries`` entries and ``max_body_bytes`` of bodies; an entry over the budget goes
  alone). A thread that finished a call makes the next one from what waits, so one call
  follows another without a gap; a further call starts at once only when a full call's worth
  (``max_entries``) waits, up to ``max_calls`` calls at once;
* each request gets its own entry's outcome: ``Successful`` -> accepted; ``Failed`` -> its own
  ``PublishFailed`` with SQS's ``Code``; a call that fails as a whole fails each of its entries.

A request that gave up waiting (its caller's time bound) cancels its future: if it was still
waiting it is never sent; if its call already started, the message may still arrive (the
caller answered 503, as for a timed-out ``SendMessage``).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import HTTPClientError

from contacts_domain.ports import PublishFailed

#: ``send(entries)`` makes one ``SendMessageBatch`` call with ``entries`` (each with its
#: ``Id``) and returns its response; raises when the call failed as a whole.
SendBatch = Callable[[list[dict[str, Any]]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class _Request:
    entry: dict[str, Any]
    size: int
    future: concurrent.futures.Future[None]


class SendCoalescer:
    """Coalesces concurrent single sends into ``SendMessageBatch`` calls (module docstring).

    ``executor`` runs the calls (its threads also run the calls that follow); ``max_calls``
    (<= its threads) bounds the calls in flight at once.
    """

    def __init__(
        self,
        send: SendBatch,
        executor: concurrent.futures.Executor,
        *,
        max_calls: int,
        max_entries: int,
        max_body_bytes: int,
    ) -> None:
        self._send = send
        self._executor = executor
        self._max_calls = max_calls
        self._max_entries = max_entries
        self._max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._waiting: deque[_Request] = deque()
        self._calls = 0

    def submit(self, entry: dict[str, Any], size: int) -> concurrent.futures.Future[None]:
        """Queue ``entry`` (``SendMessage`` arguments without ``QueueUrl``; its ``Id`` is set
        here) whose body is ``size`` bytes. The future ends with ``None`` once SQS accepted it,
        or with ``PublishFailed``; cancel it to withdraw an entry not sent yet."""
        request = _Request(entry, size, concurrent.futures.Future())
        with self._lock:
            self._waiting.append(request)
            start = self._calls == 0 or (
                len(self._waiting) >= self._max_entries and self._calls < self._max_calls
            )
            if start:
                self._calls += 1
        if start:
            try:
                self._executor.submit(self._run)
            except RuntimeError:  # the executor was shut down (interpreter exit)
                with self._lock:
                    self._calls -= 1
                request.future.cancel()
        return request.future

    def _run(self) -> None:
        """Make calls from what waits until nothing does (one thread of the executor)."""
        while True:
            with self._lock:
                batch = self._take()
                if not batch:
                    self._calls -= 1
                    return
            try:
                self._call(batch)
            except Exception as exc:  # never strand the requests, nor this call's slot
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(
                            PublishFailed(f"Send failed: {exc!r}.", may_be_queued=True)
                        )

    def _take(self) -> list[_Request]:
        """Up to ``max_entries`` waiting requests within ``max_body_bytes`` (at least one),
        oldest first, skipping withdrawn ones; the caller holds the lock."""
        batch: list[_Request] = []
        size = 0
        while self._waiting and len(batch) < self._max_entries:
            request = self._waiting[0]
            if batch and size + request.size > self._max_body_bytes:
                break
            self._waiting.popleft()
            if request.future.set_running_or_notify_cancel():
                batch.append(request)
                size += request.size
        return batch

    def _call(self, batch: list[_Request]) -> None:
        """One ``SendMessageBatch`` call for ``batch``; settles each request's future."""
        for index, request in enumerate(batch):
            request.entry["Id"] = str(index)
        try:
            response = self._send([request.entry for request in batch])
        except Exception as exc:
            for request in batch:
                failure = PublishFailed(
                    f"SQS refused the message: {type(exc).__name__}.",
                    may_be_queued=answer_lost(exc),
                )
                failure.__cause__ = exc
                request.future.set_exception(failure)
            return
        succeeded = {entry.get("Id") for entry in response.get("Successful", ())}
        codes = {entry.get("Id"): entry.get("Code") for entry in response.get("Failed", ())}
        for index, request in enumerate(batch):
            if str(index) in succeeded:
                request.future.set_result(None)
            else:
                code = codes.get(str(index)) or "not reported as sent"
                request.future.set_exception(PublishFailed(f"SQS refused the message: {code}."))


def answer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (raised by a ``SendMessageBatch`` call) leaves it unknown if SQS took
    the messages: the request was sent and its answer timed out or its connection closed
    (botocore's ``HTTPClientError``: ``ReadTimeoutError``, ``ConnectionClosedError``). A refusal
    SQS answered (``ClientError``) or a connection never made (``EndpointConnectionError``,
    ``ConnectTimeoutError``) queued nothing."""
    return isinstance(exc, HTTPClientError)
