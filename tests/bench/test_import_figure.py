"""The import figures of ``make bench`` (issue 13): the file it posts and its raw reference.

The figure is only the issue's figure if the file is the largest import allowed by default
(10,000 valid cards, under ``IMPORT_MAX_BYTES``) and the raw reference sends the very messages
the command API queues for it: one per card, each in a message group of its own (new emails).
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import sys
from pathlib import Path
from types import ModuleType

from command_api.adapters.sqs_publisher import SqsTarget
from command_api.service_layer.imports import ImportLimits, Upload, parse

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_the_default_address_book_is_the_largest_import_allowed() -> None:
    book = _bench_module("address_book")
    body = book.address_book(domain="import-test.example.com")
    limits = ImportLimits(
        max_bytes=book.DEFAULT_BYTES, max_records=10_000, errors_max=1_000, default_region="US"
    )
    upload = Upload(io.BytesIO(body), "vcard", len(body), "")
    parsed = parse(
        upload, "00000000-0000-4000-8000-000000000000", limits, received_at=dt.datetime.now(dt.UTC)
    )
    assert len(body) <= book.DEFAULT_BYTES
    assert len(body) > 0.9 * book.DEFAULT_BYTES
    assert (parsed.report.received, parsed.report.accepted) == (10_000, 10_000)
    first = next(iter(parsed.valid))[1]
    assert first["emails"][0]["value"] == "rosa.example1@import-test.example.com"


def test_the_raw_reference_sends_one_message_per_card_in_groups_of_their_own() -> None:
    book = _bench_module("address_book")
    writes = _bench_module("writes")
    body = book.address_book(200, 200_000, domain="raw-test.example.com")
    target = SqsTarget(
        queue_name="bench.fifo",
        queue_url="http://127.0.0.1:1/000000000000/bench.fifo",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="test",
        secret_access_key="test",
        send_timeout_s=1.0,
    )
    messages = writes.import_messages(target, body)
    assert len(messages) == 200
    assert len({m["MessageGroupId"] for m in messages}) == 200
    assert len({m["MessageDeduplicationId"] for m in messages}) == 200
    assert all(len(m["MessageBody"]) > 1_000 for m in messages)
