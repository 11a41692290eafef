"""Where ``make bench``'s idle freshness time goes (``writes.freshness_segments``, issue 13).

Each idle write is cut at the worker's ``batch received`` line (the main process hands the
batch to a pool process) and its ``event processed`` line, matched by operation id; its 202 is
timed apart (the worker often has the event before the client has the 202). The lines are the
worker's JSON log format; a write the worker did not log counts only in the POST segment, and a
``batch received`` line from before the write is never taken for its own.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
T0 = dt.datetime(2026, 12, 6, 14, 0, tzinfo=dt.UTC).timestamp()


def _writes() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("writes")


def _line(event: str, at: float, **fields: str | float) -> str:
    moment = dt.datetime.fromtimestamp(T0 + at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps({"event": event, "time": moment, "level": "info", **fields})


def test_each_write_is_cut_at_its_own_batch_and_event_lines() -> None:
    writes = _writes()
    trace = [
        {"operation_id": "op-1", "posted": T0, "accepted": T0 + 0.005, "seen": T0 + 0.020},
        {"operation_id": "op-2", "posted": T0 + 1, "accepted": T0 + 1.004, "seen": T0 + 1.030},
    ]
    log = [
        "not json",
        _line("batch received", -5.0),
        _line("batch received", 0.007),
        _line("event processed", 0.015, operation_id="op-1", duration_ms=5.0),
        _line("batch received", 1.010),
        _line("event processed", 1.022, operation_id="op-2"),
    ]
    segments = writes.freshness_segments(trace, log)
    assert segments["post_to_202"]["writes"] == 2
    assert segments["post_to_dispatched"]["p50_ms"] == pytest.approx(8.5, abs=0.01)
    assert segments["post_to_dispatched"]["max_ms"] == pytest.approx(10.0, abs=0.01)
    assert segments["dispatched_to_processed"]["max_ms"] == pytest.approx(12.0, abs=0.01)
    assert segments["processed_to_seen"]["max_ms"] == pytest.approx(8.0, abs=0.01)
    assert segments["pool_apply"]["writes"] == 1  # op-2's line has no duration
    assert segments["pool_apply"]["max_ms"] == pytest.approx(5.0, abs=0.01)
    assert segments["pool_handoff"]["max_ms"] == pytest.approx(3.0, abs=0.01)


def test_a_write_without_worker_lines_counts_only_in_the_post_segment() -> None:
    writes = _writes()
    trace = [{"operation_id": "op-9", "posted": T0, "accepted": T0 + 0.003, "seen": T0 + 0.02}]
    segments = writes.freshness_segments(trace, [_line("batch received", -1.0)])
    assert list(segments) == ["post_to_202"]
    assert segments["post_to_202"]["max_ms"] == pytest.approx(3.0, abs=0.01)
