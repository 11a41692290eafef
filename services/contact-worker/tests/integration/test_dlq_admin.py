"""``contact-worker-admin dlq list|show|redrive|purge`` as a process, on a dead-letter queue of
the real SQS server holding one message of each reason (and Redis for the imports' record)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from contact_worker.adapters.dead_letter_queue import (
    DEDUPLICATION_INTERVAL_S,
    DeadLetter,
    redrive_deduplication_id,
)
from contact_worker.service_layer.dead_letters import DeadLetterSummary
from contacts_domain import ContactEvent, HybridLogicalClock, normalize_contact
from contacts_infra.import_dead_letters import RedisImportDeadLetters
from contacts_infra.messaging import (
    CeleryOrigin,
    apply_event_message,
    celery_body,
    message_group_id,
)
from contacts_infra.redis_keys import import_key
from support.poison import celery_shaped
from support.resources import isolated_queues, queue_env

ADMIN = Path(sys.executable).with_name("contact-worker-admin")
#: Values that must never be printed: they are the contacts' personal data.
SECRETS = ("Zelda Quux", "zelda.secret@example.org", "not-a-list-secret")


def event(kind: str, data: dict[str, Any], import_id: str | None = None) -> ContactEvent:
    return ContactEvent(
        id=str(uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        contact_id=str(uuid.uuid4()),
        sequence=HybridLogicalClock().next(),
        time=dt.datetime.now(dt.UTC),
        operation_id=str(uuid.uuid4()),
        data=data,
        import_id=import_id,
    )


@pytest.fixture
def dead_letters(
    stack_env: dict[str, str], sqs_client: Any, redis_client: redis.Redis, redis_prefix: str
) -> Iterator[dict[str, Any]]:
    """Queues of this test with four dead-lettered messages, one per reason; the valid event
    belongs to an import whose report exists and which counts it as dead-lettered."""
    name = f"d{uuid.uuid4().hex[:10]}"
    import_id = str(uuid.uuid4())
    redis_client.set(import_key(redis_prefix, "default", import_id), "{}", ex=600)
    failed = event("created", {"first_name": "Zelda Quux"}, import_id)
    malformed = event("patched", {"emails": "not-a-list-secret"})
    bodies = {
        "unreadable": "zelda.secret@example.org",
        "unknown_task": celery_shaped("contacts.no_such_task", [{}]),
        "malformed_event": celery_shaped("contacts.apply_event", [malformed.to_cloudevent()]),
        "failed_event": celery_shaped("contacts.apply_event", [failed.to_cloudevent()]),
    }
    with isolated_queues(sqs_client, name) as urls:
        ids = {}
        for reason, body in bodies.items():
            group = failed.contact_id if reason == "failed_event" else f"g-{reason}"
            ids[reason] = sqs_client.send_message(
                QueueUrl=urls.dlq,
                MessageBody=body,
                MessageGroupId=group,
                MessageDeduplicationId=f"dedup-{reason}",
            )["MessageId"]
        record = RedisImportDeadLetters(redis_client, prefix=redis_prefix)
        assert record.record("default", import_id, failed.id)
        yield {
            "env": {**os.environ, **stack_env, **queue_env(name, urls)},
            "urls": urls,
            "ids": ids,
            "failed": failed,
            "bodies": bodies,
            "record": record,
        }


def admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ADMIN), "dlq", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_list_and_show_tell_the_reason_without_personal_data(dead_letters: dict[str, Any]) -> None:
    env, ids, failed = dead_letters["env"], dead_letters["ids"], dead_letters["failed"]

    listed = admin(env, "list")
    again = admin(env, "list")  # listing removes nothing
    shown = admin(env, "show", ids["failed_event"])

    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[2:6]}
    assert {reason: rows[message_id][1] for reason, message_id in ids.items()} == {
        reason: reason for reason in ids
    }
    assert rows[ids["failed_event"]][2:5] == [
        "contacts.contact.created.v1",
        failed.id,
        failed.contact_id,
    ]
    for reason in ids:
        assert f"{reason}: 1 (" in listed.stdout
    assert again.stdout.splitlines()[0] == listed.stdout.splitlines()[0]
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"import id: {failed.import_id}" in shown.stdout
    assert "data fields: first_name" in shown.stdout
    for output in (listed.stdout, shown.stdout, listed.stderr, shown.stderr):
        assert not [secret for secret in SECRETS if secret in output]
    assert admin(env, "show", "no-such-message").returncode == 2


def test_redrive_sends_back_with_the_group_and_forgets_the_import_record(
    dead_letters: dict[str, Any], sqs_client: Any
) -> None:
    env, urls, failed = dead_letters["env"], dead_letters["urls"], dead_letters["failed"]

    done = admin(env, "redrive", "--reason", "failed_event")

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("1 message(s) sent back to ")
    assert "3 left" in done.stdout
    answer = sqs_client.receive_message(
        QueueUrl=urls.main, MaxNumberOfMessages=10, WaitTimeSeconds=2, AttributeNames=["All"]
    )
    [message] = answer["Messages"]
    assert message["Body"] == dead_letters["bodies"]["failed_event"]
    assert message["Attributes"]["MessageGroupId"] == failed.contact_id
    # Sent less than 5 minutes ago: a fresh deduplication id, or SQS would drop the copy.
    assert message["Attributes"]["MessageDeduplicationId"].startswith("dedup-failed_event:r")
    assert dead_letters["record"].count("default", failed.import_id) == 0
    remaining = admin(env, "list").stdout
    assert dead_letters["ids"]["failed_event"] not in remaining
    assert "3 message(s) read" in remaining


def test_purge_needs_yes_and_deletes_what_is_selected(dead_letters: dict[str, Any]) -> None:
    env, ids = dead_letters["env"], dead_letters["ids"]

    refused = admin(env, "purge")
    one = admin(env, "purge", "--yes", "--message-id", ids["unreadable"])
    rest = admin(env, "purge", "--yes")

    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert one.stdout.strip() == "1 message(s) deleted, 3 left"
    assert rest.stdout.strip() == "3 message(s) deleted, 0 left"
    assert "0 message(s) read" in admin(env, "list").stdout


def test_an_old_message_keeps_its_deduplication_id() -> None:
    now = dt.datetime.now(dt.UTC)

    def dead(age_s: float) -> DeadLetter:
        sent = now - dt.timedelta(seconds=age_s)
        summary = DeadLetterSummary("failed_event")
        return DeadLetter("m", "r", "b", "g", "e" * 128, 4, sent, summary)

    assert redrive_deduplication_id(dead(DEDUPLICATION_INTERVAL_S + 1), now) == "e" * 128
    young = redrive_deduplication_id(dead(10), now)
    assert young is not None
    assert len(young) == 128
    assert young.endswith(f":r{int(now.timestamp() * 1000)}")
    assert json.dumps(young)  # a plain string SQS takes


def test_show_reads_the_command_api_s_message_which_holds_no_personal_data_outside_its_body(
    stack_env: dict[str, str], sqs_client: Any
) -> None:
    # Issue 16: the headers carried a repr of the arguments (argsrepr), kept for the DLQ's
    # retention. The message is built exactly as the command API builds it.
    failed = event("created", {"first_name": "Zelda Quux", "email": "zelda.secret@example.org"})
    failed = dataclasses.replace(
        failed, data=normalize_contact(failed.data, partial=False, default_region="US")
    )
    name = f"d{uuid.uuid4().hex[:10]}"
    message = apply_event_message(
        celery_body(failed.to_cloudevent()),
        queue_name=f"{name}.fifo",
        group_id=message_group_id(failed),
        deduplication_id=failed.id,
        sender=CeleryOrigin.of_this_process(),
    )
    envelope = json.loads(base64.b64decode(message["MessageBody"]))
    outside_body = json.dumps({k: v for k, v in envelope.items() if k != "body"})
    assert not [secret for secret in SECRETS if secret in outside_body]
    with isolated_queues(sqs_client, name) as urls:
        message_id = sqs_client.send_message(QueueUrl=urls.dlq, **message)["MessageId"]
        env = {**os.environ, **stack_env, **queue_env(name, urls)}

        shown = admin(env, "show", message_id)

    assert shown.returncode == 0, shown.stderr[-2000:]
    assert failed.id in shown.stdout
    [fields] = [line for line in shown.stdout.splitlines() if "data fields:" in line]
    assert "first_name" in fields
    assert not [secret for secret in SECRETS if secret in shown.stdout + shown.stderr]
