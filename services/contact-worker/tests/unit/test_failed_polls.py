"""A worker cut off from SQS pauses between failed receives and warns once, not per poll."""

from __future__ import annotations

import logging
import time

import pytest

from contact_worker.adapters.sqs_heartbeat import HeartbeatChannel


def test_failed_receives_pause_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    channel = HeartbeatChannel.__new__(HeartbeatChannel)  # no broker connection needed
    channel.FAILED_POLL_PAUSE_S = 0.05
    caplog.set_level(logging.WARNING, logger="contact_worker.adapters.sqs_heartbeat")

    started = time.monotonic()
    results = [channel._on_messages_ready(None, "q.fifo", ["error body"]) for _ in range(5)]
    elapsed = time.monotonic() - started

    assert results == [0] * 5
    assert elapsed >= 5 * 0.05  # paused after every failed receive
    warnings = [r for r in caplog.records if "failed receives in a row" in r.getMessage()]
    assert len(warnings) == 1
    assert channel._failed_polls == 5
