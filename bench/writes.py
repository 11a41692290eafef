"""The write-path figures of ``make bench``: SQS messages as the command API sends them, the
worker's drain rate, and freshness (POST → operation ``applied``) idle and under load."""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import datetime as dt
import functools
import http.client
import io
import json
import random
import statistics
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dataset
import psycopg2
import redis
import requests
import stack

from command_api.adapters.sqs_publisher import SqsEventPublisher, SqsTarget
from command_api.service_layer.imports import ImportLimits, Upload, command_for, parse
from contacts_domain import to_event
from contacts_domain.imports import record_ids
from contacts_domain.sequence import HybridLogicalClock
from contacts_domain.workspaces import DEFAULT_WORKSPACE
from contacts_exchange import ImportRecord
from contacts_infra.redis_keys import operation_key


def command_api_messages(
    target: SqsTarget, start: int, stop: int, total: int
) -> list[dict[str, Any]]:
    """The ``SendMessage`` arguments of ``dataset.events(start, stop, total)`` exactly as the
    command API's publisher (``SqsEventPublisher.message``: Celery's message format) makes
    them. Nothing is sent."""
    publisher = SqsEventPublisher(target)
    return [publisher.message(event) for event in dataset.events(start, stop, total)]


def import_messages(target: SqsTarget, body: bytes) -> list[dict[str, Any]]:
    """The ``SendMessage`` arguments of the events an import of the vCard file ``body`` queues
    (the default workspace), made as the command API makes them: its parse
    (``service_layer.imports.parse``, default limits), ``command_for``, ``record_ids`` and its
    publisher's ``message``. Nothing is sent. The raw reference of the import figure."""
    import_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    limits = ImportLimits(
        max_bytes=len(body) + 1, max_records=1_000_000, errors_max=1_000, default_region="US"
    )
    upload = Upload(io.BytesIO(body), "vcard", len(body), "")
    parsed = parse(upload, import_id, limits, received_at=now)
    publisher = SqsEventPublisher(target)
    clock = HybridLogicalClock(node="bench")
    messages = []
    for position, fields in parsed.valid:
        ids = record_ids(import_id, position)
        record = ImportRecord(position, None, fields)
        event = to_event(
            command_for(import_id, record, ids),
            event_id=ids.event_id,
            operation_id=ids.operation_id,
            sequence=clock.next(),
            time=now,
            correlation_id=None,
            import_id=import_id,
            workspace=DEFAULT_WORKSPACE,
        )
        messages.append(publisher.message(event))
    return messages


def processed_since(dsn: str, since: dt.datetime) -> tuple[int, float | None]:
    """(events processed since ``since``, seconds from the first to the last of them) from the
    worker's inbox: ``processed_at`` is each transaction's start time."""
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), extract(epoch FROM max(processed_at) - min(processed_at)) "
            "FROM processed_events WHERE processed_at >= %s",
            (since,),
        )
        count, span = cur.fetchone()
    return int(count), float(span) if span is not None else None


class Refused(RuntimeError):
    """The command API answered 503 with ``Retry-After`` (SQS did not confirm the send in time):
    the product's answer to an overloaded queue, not a failure of the run. ``retry_after_s``
    is what the answer asked for (seconds)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"refused (503), retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


def post_contact(session: requests.Session, command_url: str, index: int) -> str:
    """POST one new contact; returns its operation id. Raises ``Refused`` for a 503 with
    ``Retry-After``, ``RuntimeError`` for anything else but 202."""
    rng = random.Random(f"post:{index}")
    answer = session.post(
        f"{command_url}/v1/contacts",
        json=dataset.raw_contact(rng, index),
        headers={"X-Request-ID": f"bench-{index}"},
        timeout=10,
    )
    if answer.status_code == 503 and "Retry-After" in answer.headers:
        raise Refused(float(answer.headers["Retry-After"]))
    if answer.status_code != 202:
        raise RuntimeError(f"POST answered {answer.status_code}: {answer.text[:200]}")
    return str(answer.json()["operation_id"])


#: Pause between two polls of one write's status (``OperationPoller.wait``).
POLL_PAUSE_S = 0.001


class OperationPoller:
    """Polls ``GET /v1/operations/{id}`` of the query API at ``base_url`` over one kept-alive
    ``http.client`` connection with this run's API key, as a client waiting for its write would.

    Lighter than ``requests`` for the client, whose own time per GET counts in every write's
    freshness (bench/README.md, "Session 15: idle freshness")."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._connect = functools.partial(
            http.client.HTTPConnection, parts.hostname, parts.port, timeout=timeout_s
        )
        self._connection = self._connect()
        self._headers = {"Authorization": f"Bearer {stack.BENCH_API_KEY}"}

    def status(self, operation_id: str) -> str | None:
        """The operation's ``status``, or ``None`` when the answer was not a 200."""
        try:
            self._connection.request("GET", f"/v1/operations/{operation_id}", headers=self._headers)
            answer = self._connection.getresponse()
            body = answer.read()
        except (http.client.HTTPException, OSError):
            self._connection.close()  # the keep-alive connection was closed: open another
            self._connection = self._connect()
            return None
        if answer.status != 200:
            return None
        return str(json.loads(body)["status"])

    def wait(self, operation_id: str, started: float, limit_s: float = 30) -> dict[str, Any]:
        """Poll until the operation is no longer ``pending`` (a pause of ``POLL_PAUSE_S``
        between polls); returns when the answer saying so came back (``seen``, epoch s),
        when the GET that brought it was sent (``seen_sent``), when the last GET that still
        said ``pending`` was sent (``pending_sent``, ``None`` if none did) and the GETs made.
        Raises ``TimeoutError`` past ``limit_s`` seconds from ``started`` (perf_counter)."""
        polls, pending_sent = 0, None
        while True:
            sent = time.time()
            status = self.status(operation_id)
            polls += 1
            if status is not None and status != "pending":
                return {
                    "seen": time.time(),
                    "seen_sent": sent,
                    "pending_sent": pending_sent,
                    "polls": polls,
                }
            pending_sent = sent
            if time.perf_counter() - started > limit_s:
                raise TimeoutError(operation_id)
            time.sleep(POLL_PAUSE_S)


def freshness_idle(
    command_url: str,
    query_url: str,
    first_index: int,
    count: int,
    pause_s: tuple[float, float] = (0.02, 0.08),
    trace: list[dict[str, Any]] | None = None,
) -> list[float]:
    """POST → ``applied`` latencies in ms of ``count`` single writes, one at a time, each
    after a random pause of ``pause_s`` seconds (the worker is idle between them). Each write
    is polled through the query API's ``GET /v1/operations/{id}`` (``OperationPoller``), as a
    client waiting for its write would; its latency ends when the answer that is no longer
    ``pending`` came back.

    With ``trace``, each write appends ``{"operation_id", "posted", "accepted", "seen",
    "seen_sent", "pending_sent", "polls"}`` to it: epoch seconds (``time.time``, the clock of
    the services' log lines) when its POST was sent, when its 202 came back and those of
    ``OperationPoller.wait`` (``freshness_segments``)."""
    session = stack.api_session()
    poller = OperationPoller(query_url)
    samples = []
    for n in range(count):
        time.sleep(random.uniform(*pause_s))
        posted, started = time.time(), time.perf_counter()
        operation = post_contact(session, command_url, first_index + n)
        accepted = time.time()
        seen = poller.wait(operation, started)
        samples.append((time.perf_counter() - started) * 1000)
        if trace is not None:
            trace.append(
                {"operation_id": operation, "posted": posted, "accepted": accepted, **seen}
            )
    return samples


#: The segments of an idle write (``freshness_segments``), in the order they happen.
#: ``post_to_202`` overlaps the next one: the worker often has the event before the 202 is back.
SEGMENTS = (
    "post_to_202",
    "post_to_dispatched",
    "dispatched_to_processed",
    "processed_to_seen",
)


#: ``dispatched_to_processed`` split, when the worker logs ``duration_ms``: from the batch
#: handed to the pool to a pool process taking it (and the log line's own cost), and the apply
#: itself (``read_event``, the transaction, the Redis pipeline).
SPLIT = ("pool_handoff", "pool_apply")

#: ``processed_to_seen`` when the trace has it: the duration of the GET that saw the write
#: applied (``OperationPoller.wait``'s ``seen - seen_sent``); the rest is the poll that was
#: under way, or the pause, when the status changed.
POLL = ("seen_get",)


def freshness_segments(
    trace: Sequence[dict[str, Any]], worker_log: Iterable[str]
) -> dict[str, dict[str, float]]:
    """Where the time of idle writes went: p50/p90/p99/max ms of each of ``SEGMENTS`` over
    the writes of ``trace`` (``freshness_idle``; the last three add up to a write's time),
    from the worker's JSON log lines: the main
    process's ``batch received`` (the batch handed to a pool process) just before and the
    pool process's ``event processed`` (``celery_app.apply_envelopes``: after the batch's
    commit and its Redis pipeline of cache and statuses) of each write's operation. So
    ``post_to_dispatched`` is the command API up to its ``SendMessage``, SQS and the worker's
    receive; ``dispatched_to_processed`` the pool hand-off, the transaction and the Redis writes;
    ``processed_to_seen`` the client's poll (a ``GET /v1/operations/{id}`` every 1 ms). A
    write whose lines are missing counts only in ``post_to_202``."""
    dispatched: list[float] = []
    processed: dict[str, float] = {}
    applying: dict[str, float] = {}
    for line in worker_log:
        record = _json_line(line)
        if record is None or "time" not in record:
            continue
        moment = dt.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
        if record.get("event") == "batch received":
            dispatched.append(moment)
        elif record.get("event") == "event processed" and record.get("operation_id"):
            processed[record["operation_id"]] = moment
            if isinstance(record.get("duration_ms"), int | float):
                applying[record["operation_id"]] = record["duration_ms"] / 1000
    dispatched.sort()
    spans: dict[str, list[float]] = {name: [] for name in (*SEGMENTS, *SPLIT, *POLL)}
    for write in trace:
        spans["post_to_202"].append(write["accepted"] - write["posted"])
        if "seen_sent" in write:
            spans["seen_get"].append(write["seen"] - write["seen_sent"])
        done = processed.get(write["operation_id"])
        start = bisect.bisect_right(dispatched, done) - 1 if done is not None else -1
        if done is None or start < 0 or dispatched[start] < write["posted"]:
            continue
        spans["post_to_dispatched"].append(dispatched[start] - write["posted"])
        spans["dispatched_to_processed"].append(done - dispatched[start])
        if write["operation_id"] in applying:
            apply_s = applying[write["operation_id"]]
            spans["pool_handoff"].append(done - apply_s - dispatched[start])
            spans["pool_apply"].append(apply_s)
        spans["processed_to_seen"].append(write["seen"] - done)
    return {
        name: {
            "writes": len(values),
            **{f"p{q}_ms": percentile(values, q) * 1000 for q in (50, 90, 99)},
            "max_ms": max(values) * 1000,
        }
        for name, values in spans.items()
        if values
    }


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def freshness_under_load(
    command_url: str,
    redis_url: str,
    prefix: str,
    first_index: int,
    rate: float,
    seconds: float,
    senders: int = 8,
) -> dict[str, Any]:
    """Paced writes at ``rate`` POST/s for ``seconds`` s (Poisson arrivals, ``senders``
    threads), every one of them timed from just before its POST until its operation status in
    Redis (what ``GET /v1/operations/{id}`` reads first) is no longer ``pending``. One thread
    polls the statuses of all outstanding writes with a pipelined GET every 2 ms, so observing
    adds no load to the query API. A write refused with 503 (``Refused``: the queue did not
    confirm it in time) is counted in ``refused``, and its sender waits as the answer asks
    (at most 1 s). Returns the latencies (ms), the achieved rate and those counts."""
    client = redis.Redis.from_url(redis_url)
    pending: dict[str, float] = {}
    done: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    sent = [0]
    refused = [0]

    def watcher() -> None:
        while not stop.is_set() or pending:
            with lock:
                waiting = list(pending.items())
            if waiting:
                pipe = client.pipeline(transaction=False)
                for operation, _ in waiting:
                    pipe.get(operation_key(prefix, DEFAULT_WORKSPACE, operation))
                now = time.perf_counter()
                for (operation, started), raw in zip(waiting, pipe.execute(), strict=True):
                    if raw is not None and b'"pending"' not in raw:
                        with lock:
                            pending.pop(operation, None)
                            done.append((now - started) * 1000)
            if stop.is_set() and time.perf_counter() > deadline + 30:
                break
            time.sleep(0.002)

    def sender(slot: int) -> None:
        session = stack.api_session()
        rng = random.Random(slot)
        next_at = time.perf_counter()
        index = first_index + slot
        while not stop.is_set():
            next_at += rng.expovariate(rate / senders)
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            started = time.perf_counter()
            if started > deadline:
                break
            try:
                operation = post_contact(session, command_url, index)
            except Refused as refusal:  # counted and reported; the sender waits as asked
                with lock:
                    refused[0] += 1
                time.sleep(min(refusal.retry_after_s, 1.0))
                next_at = time.perf_counter()
                continue
            with lock:
                pending[operation] = started
                sent[0] += 1
            index += senders

    deadline = time.perf_counter() + seconds
    watch = threading.Thread(target=watcher, daemon=True)
    watch.start()
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        list(pool.map(sender, range(senders)))
    stop.set()
    watch.join(60)
    client.close()
    done.sort()
    return {
        "samples_ms": done,
        "sent": sent[0],
        "rate": sent[0] / seconds,
        "unfinished": len(pending),
        "refused": refused[0],
    }


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``samples``, inclusive method."""
    if len(samples) == 1:
        return float(samples[0])
    cuts = statistics.quantiles(samples, n=1000, method="inclusive")
    return float(cuts[min(int(q * 10) - 1, len(cuts) - 1)])


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def time_import(
    command_url: str,
    query_url: str,
    body: bytes,
    idempotency_key: str,
    *,
    poll_s: float = 0.1,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """POST ``body`` (a vCard file) to the command API's ``POST /v1/imports`` and time it: the
    seconds until its ``202`` (``accepted_s``) and, from the same start, until the query API's
    ``GET /v1/imports/{id}`` says ``completed`` (``applied_s``: every accepted record applied,
    rejected or dead-lettered; ``state``: how its queuing ended, ``queued`` when the command API
    queued every record, since the ``202`` comes before most of them are), polled every
    ``poll_s`` seconds (one grouped index read of the outcomes per poll). Raises
    ``RuntimeError`` for an answer other than 202 and ``TimeoutError`` after ``timeout_s``
    seconds."""
    session = stack.api_session()
    started = time.perf_counter()
    answer = session.post(
        f"{command_url}/v1/imports",
        data=body,
        headers={"Content-Type": "text/vcard", "Idempotency-Key": idempotency_key},
        timeout=120,
    )
    accepted_s = time.perf_counter() - started
    if answer.status_code != 202:
        raise RuntimeError(f"POST /v1/imports answered {answer.status_code}: {answer.text[:300]}")
    counts = answer.json()
    url = f"{query_url}/v1/imports/{counts['import_id']}"
    polls = 0
    while True:
        status = session.get(url, timeout=10)
        polls += 1
        if status.status_code == 200 and status.json()["status"] == "completed":
            applied_s = time.perf_counter() - started
            break
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"{url} still pending after {timeout_s} s: {status.text[:300]}")
        time.sleep(poll_s)
    final = status.json()
    return {
        "accepted_s": accepted_s,
        "applied_s": applied_s,
        "bytes": len(body),
        "received": counts["received"],
        "accepted": counts["accepted"],
        "state": final["state"],
        "applied": final["applied"],
        "rejected": final["rejected"],
        "dead_lettered": final["dead_lettered"],
        "polls": polls,
    }
