"""An import whose command API is killed while it queues the records after its ``202``
(issue 13: the rest of an import is queued in the background, docs/architecture.md §5.1).

The report must not stay ``queuing`` for ever, nor say ``queued``: once the killed process's
queuing lease expires, ``GET /v1/imports/{id}`` says ``interrupted``. Sending the same file
again with the same ``Idempotency-Key`` then queues it again under the same event ids, and
every record is applied exactly once.

The command API reaches SQS through a fault proxy: right after the ``202`` the proxy holds its
sends (``blackhole``), so the kill always lands while records are still unqueued.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from support.auth import api
from support.fault_proxy import FaultProxy
from support.processes import command_api, free_port, http_ok, query_api, worker
from support.resources import isolated_database, isolated_queues, queue_env
from support.stack import Stack, running_stack

CARDS = 1_500
LEASE_S = 2
APPLY_TIMEOUT_S = 180


def address_book(count: int) -> bytes:
    """``count`` vCards, each with an email of its own (every record an upsert)."""
    return "".join(
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"N:Interrupted{n};Rosa;;;\r\nFN:Rosa Interrupted{n}\r\n"
        f"EMAIL:rosa.interrupted{n}@example.com\r\nEND:VCARD\r\n"
        for n in range(1, count + 1)
    ).encode()


@pytest.fixture
def proxied(
    stack_env: dict[str, str], sqs_client: Any, run_id: str
) -> Iterator[tuple[Stack, FaultProxy]]:
    """A stack whose command API sends to SQS through a fault proxy (a lease of ``LEASE_S``)."""
    name = f"t{run_id}-intr"
    host, port = urlsplit(stack_env["SQS_ENDPOINT_URL"]).netloc.split(":")
    proxy = FaultProxy((host, int(port))).start()
    command_port, query_port = free_port(), free_port()
    with isolated_database(f"{run_id}intr") as database, isolated_queues(sqs_client, name) as urls:
        env = {
            **stack_env,
            **queue_env(name, urls),
            "DATABASE_URL": database.url,
            "QUERY_DATABASE_URL": database.reader_url,
            "REDIS_PREFIX": f"{stack_env['REDIS_PREFIX']}intr:",
            "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
            "IMPORT_QUEUING_LEASE_S": str(LEASE_S),
        }
        command_env = {**env, **queue_env(name, urls, sqs_url=f"http://127.0.0.1:{proxy.port}")}
        try:
            with running_stack(
                env,
                command_api(command_port, command_env),
                query_api(query_port, env),
                worker(env, concurrency=2),
                command_port=command_port,
                query_port=query_port,
            ) as stack:
                yield stack, proxy
        finally:
            proxy.stop()


def report(stack: Stack, import_id: str) -> dict[str, Any]:
    answer = api.get(f"{stack.query_url}/v1/imports/{import_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def wait_report(stack: Stack, import_id: str, done: Any, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body = report(stack, import_id)
    while not done(body) and time.monotonic() < deadline:
        time.sleep(0.2)
        body = report(stack, import_id)
    assert done(body), body
    return body


def test_a_killed_import_is_reported_interrupted_and_a_keyed_retry_applies_each_record_once(
    proxied: tuple[Stack, FaultProxy],
) -> None:
    stack, proxy = proxied
    body = address_book(CARDS)
    headers = {"Content-Type": "text/vcard", "Idempotency-Key": "interrupted-import"}
    command = stack.services[0]

    first = api.post(f"{stack.command_url}/v1/imports", data=body, headers=headers, timeout=60)
    proxy.set_mode("blackhole")  # the background sends now hang...
    command.signal(signal.SIGKILL)  # ...and the process dies with records unqueued

    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queuing"
    import_id = first.json()["import_id"]
    interrupted = wait_report(stack, import_id, lambda r: r["state"] != "queuing", 4 * LEASE_S)
    assert interrupted["state"] == "interrupted"
    assert interrupted["status"] == "pending"
    proxy.set_mode("pass")
    command.start()
    command.wait_until(lambda: http_ok(f"{stack.command_url}/readyz"), 60, "readiness")
    # A write accepted after the first 202, to the last card's email (never queued): the retry
    # must not order that card's record after it (its sequences are the first attempt's).
    later = api.post(
        f"{stack.command_url}/v1/contacts/upsert",
        json={"first_name": "After", "email": f"rosa.interrupted{CARDS}@example.com"},
        timeout=10,
    )
    assert later.status_code == 202, later.text
    assert stack.wait_operation(later.json()["operation_id"])["status"] == "applied"
    again = api.post(f"{stack.command_url}/v1/imports", data=body, headers=headers, timeout=60)

    assert again.status_code == 202, again.text
    assert again.json()["import_id"] == import_id
    final = wait_report(stack, import_id, lambda r: r["status"] == "completed", APPLY_TIMEOUT_S)
    assert (final["state"], final["accepted"], final["failed"]) == ("queued", CARDS, 0)
    assert (final["applied"], final["rejected"], final["dead_lettered"]) == (CARDS, 0, 0)
    assert contacts(stack) == CARDS  # one contact per card, none twice
    last = api.get(
        f"{stack.query_url}/v1/contacts?email=rosa.interrupted{CARDS}@example.com", timeout=10
    )
    assert [c["first_name"] for c in last.json()["items"]] == ["After"]


def test_a_graceful_stop_finishes_the_imports_its_process_is_queuing(
    proxied: tuple[Stack, FaultProxy],
) -> None:
    stack, _ = proxied
    command = stack.services[0]
    headers = {"Content-Type": "text/vcard", "Idempotency-Key": "stopped-gracefully"}

    answer = api.post(
        f"{stack.command_url}/v1/imports", data=address_book(CARDS), headers=headers, timeout=60
    )
    command.signal(signal.SIGTERM)  # a deploy: gunicorn stops its workers gracefully

    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queuing"
    final = wait_report(
        stack, answer.json()["import_id"], lambda r: r["status"] == "completed", APPLY_TIMEOUT_S
    )
    assert (final["state"], final["accepted"], final["failed"]) == ("queued", CARDS, 0)
    assert final["applied"] == CARDS


def contacts(stack: Stack) -> int:
    """How many live contacts the list serves, through its cursor pages."""
    count, url = 0, f"{stack.query_url}/v1/contacts?limit=100"
    while url:
        answer = api.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        count += len(page["items"])
        cursor = page.get("next_cursor")
        url = f"{stack.query_url}/v1/contacts?limit=100&cursor={cursor}" if cursor else ""
    return count
