"""Issue 7, items 4–6, through the real processes: request ids and trace context in every
service's JSON logs, Prometheus metrics on every service, no personal data in logs, metrics
or error messages, and ``DELETE`` as a real erasure (no table, no Redis key keeps the data)."""

from __future__ import annotations

import hashlib
import io
import logging
import time
import uuid
from typing import Any

import redis
import requests
import sqlalchemy as sa

from contacts_telemetry.logs import configure_logging, get_logger
from support.auth import api
from support.pii_scan import find, json_lines
from support.stack import Stack

TRACEPARENT = "00-{}-{}-01"


def distinctive_person(tag: str) -> dict[str, Any]:
    """A contact whose every personal value is unique to this run and this test."""
    token = uuid.uuid4().hex[:10]
    digits = str(int(token[:6], 16) % 10_000).zfill(4)
    return {
        "first_name": f"Quorbel{tag}{token}",
        "last_name": f"Vantrexi{token}",
        "email": f"zq.{token}@pii-{tag.lower()}.example.org",
        "phone": f"+1 415 555 {digits}",
        "company": f"Plumbrook{token} Ltd",
        "notes": f"secret note {token}",
        "addresses": [{"street": f"{token} Marrowlane", "city": f"Oxtonbury{token}"}],
    }


def personal_values(person: dict[str, Any]) -> list[str]:
    """Every value of ``person`` that must not leak (the phone in its E.164 form too)."""
    values = [v for v in person.values() if isinstance(v, str)]
    values.append("+1415555" + person["phone"][-4:])
    for address in person.get("addresses", []):
        values.extend(str(v) for v in address.values())
    return values


def accepted(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    return answer.json()  # type: ignore[no-any-return]


def logs_of(stack: Stack) -> dict[str, str]:
    return {service.name: service.log() for service in stack.services}


def worker_metrics_url(stack: Stack) -> str:
    (worker,) = [s for s in stack.services if s.metrics_url]
    assert worker.metrics_url is not None
    return worker.metrics_url


def test_the_scanner_finds_a_value_that_was_logged() -> None:
    # The scan below must be able to fail: a value logged in free text, escaped or URL-encoded
    # is found; redacted keys and other text are not.
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("scanner-test", stream=stream)
        log = get_logger("scanner")
        log.info("leaked Zoë Quorbel in a message", email="zq@example.org")
        logging.getLogger("gunicorn.access").info("GET /v1/contacts?q=zq%40leak.example.org")
    finally:
        root.handlers[:], root.level = saved
    text = stream.getvalue()
    assert find(text, ["Zoë Quorbel"]) == ["Zoë Quorbel"]  # JSON keeps or escapes it: found
    assert find(text, ["zq@leak.example.org"]) == ["zq@leak.example.org"]  # URL-encoded
    assert find(text, ["zq@example.org"]) == []  # redacted key
    assert find(text, ["+1 415 555 0100"]) == []
    assert find("call 14155550100 now", ["+1 415 555 0100"]) == ["+1 415 555 0100"]


def test_request_id_and_traceparent_reach_the_command_api_and_worker_logs(stack: Stack) -> None:
    request_id = f"obs-{uuid.uuid4()}"
    traceparent = TRACEPARENT.format(uuid.uuid4().hex, uuid.uuid4().hex[:16])
    body = accepted(
        api.post(
            f"{stack.command_url}/v1/contacts",
            json={"first_name": "Trace", "last_name": "Able"},
            headers={"X-Request-ID": request_id, "traceparent": traceparent},
            timeout=10,
        )
    )
    assert stack.wait_operation(body["operation_id"])["status"] == "applied"

    deadline = time.monotonic() + 10
    while True:
        logs = {name: json_lines(text) for name, text in logs_of(stack).items()}
        command = [line for line in logs["command-api"] if line.get("request_id") == request_id]
        worker = [line for line in logs["worker"] if line.get("request_id") == request_id]
        if (command and worker) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert command, "no command-api log line carries the request id"
    assert worker, "no worker log line carries the request id"
    (processed,) = [line for line in worker if line["event"] == "event processed"]
    assert processed["traceparent"] == traceparent
    assert processed["operation_id"] == body["operation_id"]
    assert processed["contact_id"] == body["id"]
    assert processed["service"] == "contact-worker"
    assert processed["status"] == "applied"
    assert {"time", "level", "event_id"} <= processed.keys()
    assert processed["time"].endswith("Z")
    assert all(line["service"] == "command-api" for line in command)
    assert any(line["event"].startswith("POST /v1/contacts 202") for line in command)  # access
    for name, text in logs_of(stack).items():  # every line of every service is JSON
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(json_lines(text)) == len(lines), (name, [x for x in lines if x[0] != "{"])
    (queued,) = [line for line in command if line["event"].startswith("command accepted")]
    assert queued["traceparent"] == traceparent
    assert queued["operation_id"] == body["operation_id"]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` in a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        pairs = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if all(pairs.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return 0.0


def test_metrics_on_every_service(stack: Stack) -> None:
    ids = []
    for i in range(12):
        ids.append(
            accepted(
                api.post(
                    f"{stack.command_url}/v1/contacts",
                    json={"first_name": f"Metric{i}"},
                    timeout=10,
                )
            )
        )
    for body in ids:
        stack.wait_operation(body["operation_id"])
    contact_url = f"{stack.query_url}/v1/contacts/{ids[0]['id']}"
    for _ in range(3):
        assert api.get(contact_url, timeout=5).status_code == 200

    command = api.get(f"{stack.command_url}/metrics", timeout=5)
    query = api.get(f"{stack.query_url}/metrics", timeout=5)
    assert command.status_code == query.status_code == 200
    assert command.headers["Content-Type"].startswith("text/plain")
    # Two gunicorn workers: 12 posts are counted only if every worker's samples are aggregated.
    posts = sample(
        command.text, "http_requests_total", method="POST", route="/v1/contacts", status="202"
    )
    assert posts >= 12
    assert sample(command.text, "sqs_publish_duration_seconds_count", outcome="ok") >= 12
    assert sample(command.text, "commands_accepted_total", kind="created") >= 12
    route = "/v1/contacts/<contact_id>"
    assert sample(query.text, "http_requests_total", method="GET", route=route, status="200") >= 3
    assert sample(query.text, "http_request_duration_seconds_count", route=route) >= 1
    assert sample(query.text, "contact_cache_lookups_total", outcome="hit") >= 1
    for body in ids:  # ids never become label values
        assert body["id"] not in command.text + query.text

    deadline = time.monotonic() + 30
    while True:
        worker = api.get(worker_metrics_url(stack), timeout=5).text
        polled = "sqs_messages{" in worker
        if polled or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # Tasks ran in pool children; the main process serves their aggregate.
    assert sample(worker, "worker_tasks_total", outcome="applied") >= 12
    assert sample(worker, "worker_task_duration_seconds_count", outcome="applied") >= 12
    assert sample(worker, "operations_total", status="applied", reason="none") >= 12
    assert sample(worker, "worker_event_age_seconds_count") >= 12
    assert polled, "the queue depth was not polled"
    assert "sqs_oldest_message_age_seconds" in worker
    for queue in ("main", "dlq"):
        assert f'sqs_messages{{queue="{queue}",state="visible"}}' in worker


def test_no_personal_data_in_logs_metrics_or_error_messages(stack: Stack) -> None:
    person = distinctive_person("Log")
    values = personal_values(person)
    post = api.post(
        f"{stack.command_url}/v1/contacts",
        json=person,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    body = accepted(post)
    assert stack.wait_operation(body["operation_id"])["status"] == "applied"
    contact_url = f"{stack.query_url}/v1/contacts/{body['id']}"
    for _ in range(2):
        assert api.get(contact_url, timeout=5).status_code == 200
    search = api.get(
        f"{stack.query_url}/v1/contacts",
        params={"q": person["last_name"], "email": person["email"]},
        timeout=5,
    )
    assert search.status_code == 200, search.text

    # Rejected values: the problem names the field and the reason, never the value.
    bad = {
        "email": f"not-an-address-{person['last_name']}",
        "phone": f"+1 999 {person['last_name']}",
    }
    for field, value in bad.items():
        answer = api.post(
            f"{stack.command_url}/v1/contacts",
            json={"first_name": person["first_name"], field: value},
            timeout=10,
        )
        assert answer.status_code == 400, answer.text
        assert any(key.startswith(field) for key in answer.json()["errors"]), answer.text
        assert find(answer.text, [*values, value]) == [], answer.text
    answer = api.post(
        f"{stack.command_url}/v1/contacts",
        json={**person, "birthday": "not-a-date", "nickname": person["first_name"]},
        timeout=10,
    )
    assert answer.status_code == 400
    assert find(answer.text, values) == [], answer.text

    patch = accepted(
        api.patch(
            f"{stack.command_url}/v1/contacts/{body['id']}",
            json={"company": person["company"] + " Two", "notes": person["notes"] + " two"},
            timeout=10,
        )
    )
    stack.wait_operation(patch["operation_id"])
    gone = accepted(api.delete(f"{stack.command_url}/v1/contacts/{body['id']}", timeout=10))
    assert stack.wait_operation(gone["operation_id"])["status"] == "applied"
    assert api.get(contact_url, timeout=5).status_code == 404
    time.sleep(0.5)  # let the access log lines of the last requests reach the files

    leaks = {name: find(text, values) for name, text in logs_of(stack).items()}
    assert leaks == {name: [] for name in leaks}
    # The scan saw this contact's requests: its ids are in the logs (a real, non-empty scan).
    assert body["id"] in logs_of(stack)["worker"]
    metrics = [
        api.get(f"{stack.command_url}/metrics", timeout=5).text,
        api.get(f"{stack.query_url}/metrics", timeout=5).text,
        api.get(worker_metrics_url(stack), timeout=5).text,
    ]
    assert find("\n".join(metrics), values) == []


def test_delete_erases_every_copy_of_the_contact(stack: Stack) -> None:
    person = distinctive_person("Erase")
    values = personal_values(person)
    idempotency = str(uuid.uuid4())
    body = accepted(
        api.post(
            f"{stack.command_url}/v1/contacts",
            json=person,
            headers={"Idempotency-Key": idempotency},
            timeout=10,
        )
    )
    assert stack.wait_operation(body["operation_id"])["status"] == "applied"
    contact_url = f"{stack.command_url}/v1/contacts/{body['id']}"
    changes = {"last_name": person["last_name"] + "x", "email": "x" + person["email"]}
    values += list(changes.values())
    for update in (
        api.patch(contact_url, json=changes, timeout=10),
        api.put(contact_url, json={**person, "company": person["company"] + "y"}, timeout=10),
    ):
        stack.wait_operation(accepted(update)["operation_id"])
    assert api.get(f"{stack.query_url}/v1/contacts/{body['id']}", timeout=5).ok  # cached

    gone = accepted(api.delete(contact_url, timeout=10))
    assert stack.wait_operation(gone["operation_id"])["status"] == "applied"

    engine = sa.create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            ).scalars()
            rows: dict[str, str] = {}
            for table in tables:
                text = connection.execute(
                    sa.text(f"SELECT coalesce(string_agg(t::text, chr(10)), '') FROM \"{table}\" t")
                ).scalar_one()
                rows[table] = text
    finally:
        engine.dispose()
    assert {"processed_events", "contacts"} <= rows.keys()
    assert body["id"] in rows["contacts"]  # the tombstone stays: id, version, times
    leaks = {table: find(text, values) for table, text in rows.items()}
    assert leaks == {table: [] for table in rows}

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        stored = []
        for key in client.scan_iter(match=f"{stack.env['REDIS_PREFIX']}*", count=1000):
            kind = client.type(key).decode()
            value: Any = client.dump(key) if kind != "string" else client.get(key)
            stored.append(f"{key.decode(errors='replace')} {value!r}")
    finally:
        client.close()
    assert any(body["id"] in entry for entry in stored)  # the scan saw this contact's keys
    assert find("\n".join(stored), values) == []
    # Issue 16: the create's idempotency record (the contact's id and a digest of its body)
    # went with the contact, and so did its index.
    digest = hashlib.sha256(idempotency.encode()).hexdigest()
    assert not any(
        digest in entry or ("idem-index" in entry and body["id"] in entry) for entry in stored
    )
