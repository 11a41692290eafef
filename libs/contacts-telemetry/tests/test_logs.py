"""JSON log lines: shape, context, stdlib records, and the PII redaction (issue 7, items 4, 6)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from contacts_telemetry.logs import (
    REDACTED,
    bind_context,
    clear_context,
    configure_logging,
    context,
    get_logger,
)


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("test-service", level="DEBUG", stream=stream)
    clear_context()
    yield stream
    clear_context()
    root.handlers[:], root.level = saved


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_lines_are_json_with_time_level_service_and_context(output: io.StringIO) -> None:
    bind_context(request_id="req-1", operation_id="op-1", contact_id=None)
    get_logger("contact_worker").info("event processed", status="applied")
    (line,) = lines(output)
    assert line["event"] == "event processed"
    assert line["level"] == "info"
    assert line["service"] == "test-service"
    assert line["logger"] == "contact_worker"
    assert line["request_id"] == "req-1"
    assert line["operation_id"] == "op-1"
    assert "contact_id" not in line  # None is not bound
    assert line["time"].endswith("Z")
    assert line["status"] == "applied"


def test_stdlib_records_go_through_the_same_renderer(output: io.StringIO) -> None:
    with context(request_id="req-2"):
        logging.getLogger("gunicorn.error").warning("worker %s booted", 42)
    logging.getLogger("celery").info("after")
    first, second = lines(output)
    assert first["event"] == "worker 42 booted"
    assert first["level"] == "warning"
    assert first["request_id"] == "req-2"
    assert first["service"] == "test-service"
    assert "request_id" not in second  # the context ended with the block


def test_personal_data_keys_are_redacted_at_any_depth(output: io.StringIO) -> None:
    get_logger("x").info(
        "contact",
        email="ada@example.org",
        data={"first_name": "Ada", "phones": [{"value": "+14155550100"}]},
        items=[{"last_name": "Lovelace"}],
        contact_id="c-1",
    )
    (line,) = lines(output)
    text = output.getvalue()
    for value in ("ada@example.org", "Ada", "+14155550100", "Lovelace"):
        assert value not in text
    assert line["email"] == REDACTED
    assert line["data"] == REDACTED
    assert line["items"] == [{"last_name": REDACTED}]
    assert line["contact_id"] == "c-1"


def test_libraries_that_log_bodies_stay_at_info_even_at_debug(output: io.StringIO) -> None:
    # botocore logs SendMessage parameters at DEBUG: a contact's data, never written.
    logging.getLogger("botocore.endpoint").debug("Making request: MessageBody=Ada Lovelace")
    logging.getLogger("celery.pool").debug("TaskPool: Apply args=Ada Lovelace")
    get_logger("contact_worker").debug("our own debug line")
    assert "Ada" not in output.getvalue()
    assert "our own debug line" in output.getvalue()


@pytest.mark.parametrize(
    "bound",
    [
        {},
        {"request_id": "req-1"},
        {"request_id": "req-1", "traceparent": "", "contact_id": None, "workspace": "acme"},
        {"email": "rosa@example.com"},  # a personal-data key is redacted on this path too
    ],
)
def test_access_lines_render_as_the_processors_would(bound: dict, output: io.StringIO) -> None:
    # The formatter renders gunicorn's access records itself (issue 13): the same line as the
    # processor chain gives another logger's record, but for the logger's name and the time.
    clear_context()
    bind_context(**bound)
    message = "GET /v1/contacts/1 200 512 812us request_id=req-1 cache=miss"
    logging.getLogger("gunicorn.access").info(message)
    logging.getLogger("gunicorn.accessx").info(message)  # through the processors

    fast, chain = output.getvalue().splitlines()

    assert list(json.loads(fast)) == list(json.loads(chain))  # the same keys, in order
    fast_line, chain_line = json.loads(fast), json.loads(chain)
    assert fast_line["logger"] == "gunicorn.access"
    assert fast_line["time"].endswith("Z")
    assert fast_line["time"][:16] == chain_line["time"][:16]  # the same minute, written alike
    for line in (fast_line, chain_line):
        del line["logger"], line["time"]
    assert fast_line == chain_line
    assert "rosa@example.com" not in fast


def test_an_access_record_with_an_exception_goes_through_the_processors(
    output: io.StringIO,
) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("gunicorn.access").exception("GET / 500")

    (line,) = lines(output)
    assert "ValueError: boom" in line["exception"]
