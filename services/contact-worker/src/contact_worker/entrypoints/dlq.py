"""``contact-worker-admin dlq list|show|redrive|purge``: the dead-letter queue, operated
(docs/architecture.md, "Dead-lettered events"; runbooks in the contact-worker chart's README).

- ``list``: every message (up to ``--limit``) with its reason, event type and ids, message
  group, receive count and age, then the count per reason; nothing is removed.
- ``show MESSAGE_ID``: one message, with the names of its data fields.
- ``redrive``: send messages back to the main queue (same group), then delete them here; the
  events of imports are no longer counted as dead-lettered.
- ``purge``: delete messages for good (``--yes`` required).

``redrive`` and ``purge`` take every message, or those of ``--reason`` and/or
``--message-id`` (repeatable). Nothing printed carries a field value (personal data).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from contact_worker.adapters.dead_letter_queue import DeadLetter, DeadLetterQueue
from contact_worker.service_layer.dead_letters import ADVICE, REASONS, shown_group
from contacts_infra.import_dead_letters import RedisImportDeadLetters

_COLUMNS = ("MESSAGE ID", "REASON", "TYPE", "EVENT ID", "GROUP", "RECEIVES", "AGE", "IMPORT")


@dataclass(frozen=True)
class Selection:
    """Which messages a ``redrive`` or ``purge`` takes: all when both are empty."""

    reasons: frozenset[str] = frozenset()
    message_ids: frozenset[str] = frozenset()

    def __contains__(self, dead: object) -> bool:
        if not isinstance(dead, DeadLetter):
            return False
        if self.reasons and dead.summary.reason not in self.reasons:
            return False
        return not self.message_ids or dead.message_id in self.message_ids


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dlq`` and its four commands to the admin's sub-commands."""
    dlq = sub.add_parser("dlq", help="list, show, redrive or purge dead-lettered events")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)
    for name in ("list", "show", "redrive", "purge"):
        command = commands.add_parser(name)
        command.add_argument("--limit", type=int, default=1000, help="messages read at most")
        if name == "show":
            command.add_argument("message_id")
        if name in ("redrive", "purge"):
            command.add_argument("--reason", action="append", choices=REASONS, default=[])
            command.add_argument("--message-id", action="append", default=[])
        if name == "purge":
            command.add_argument("--yes", action="store_true", help="confirm the deletion")


def run(
    args: argparse.Namespace, queue: DeadLetterQueue, imports: Callable[[], RedisImportDeadLetters]
) -> str:
    """Run the ``dlq`` command of ``args``; returns what to print. ``imports`` gives the
    record of imports' dead letters (used by ``redrive`` only). Raises ``ValueError`` for a
    purge without ``--yes``."""
    now = dt.datetime.now(dt.UTC)
    command = args.dlq_command
    if command == "list":
        return list_messages(queue, args.limit, now)
    if command == "show":
        return show_message(queue, args.message_id, args.limit, now)
    selection = Selection(frozenset(args.reason), frozenset(args.message_id))
    if command == "purge":
        if not args.yes:
            raise ValueError("dlq purge deletes messages for good: add --yes")
        return purge(queue, selection, args.limit)
    return redrive(queue, selection, args.limit, imports(), now)


def list_messages(queue: DeadLetterQueue, limit: int, now: dt.datetime) -> str:
    """The table of ``list`` (see the module doc); every scanned message is released."""
    scanned = _scan_and_release(queue, limit)
    rows = [_COLUMNS, *(_row(dead, now) for dead in scanned)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [f"dead-letter queue {queue.dlq_url}: {len(scanned)} message(s) read"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    counts = Counter(dead.summary.reason for dead in scanned)
    for reason in REASONS:
        if counts[reason]:
            lines.append(f"{reason}: {counts[reason]} ({ADVICE[reason]})")
    return "\n".join(line.rstrip() for line in lines)


def show_message(queue: DeadLetterQueue, message_id: str, limit: int, now: dt.datetime) -> str:
    """The details of one message; raises ``LookupError`` when it is not among the first
    ``limit`` messages."""
    found = [d for d in _scan_and_release(queue, limit) if d.message_id == message_id]
    if not found:
        raise LookupError(f"no message {message_id} in the dead-letter queue")
    dead, summary = found[0], found[0].summary
    details = {
        "message id": dead.message_id,
        "reason": f"{summary.reason} ({ADVICE[summary.reason]})",
        "task": summary.task or "-",
        "event type": summary.event_type or "-",
        "event id": summary.event_id or "-",
        "operation id": summary.operation_id or "-",
        "import id": summary.import_id or "-",
        "message group": shown_group(dead.group_id),
        "receives": str(dead.receive_count),
        "first sent": f"{dead.sent_at.isoformat(timespec='seconds')} ({_age(dead, now)} ago)",
        "data fields": ", ".join(summary.data_fields) or "-",
        "body size": f"{len(dead.body.encode())} bytes",
    }
    return "\n".join(f"{name}: {value}" for name, value in details.items())


def redrive(
    queue: DeadLetterQueue,
    selection: Selection,
    limit: int,
    imports: RedisImportDeadLetters,
    now: dt.datetime,
) -> str:
    """Send the selected messages back to the main queue, delete them here, and forget them
    in their imports' dead letters (a Redis failure there is reported, not raised)."""
    moved, kept, unforgotten = 0, [], 0
    for dead in queue.scan(limit):
        if dead not in selection:
            kept.append(dead)
            continue
        queue.send_back(dead, now)
        queue.delete(dead)
        moved += 1
        summary = dead.summary
        if summary.import_id and summary.event_id:
            try:
                imports.forget(summary.workspace, summary.import_id, summary.event_id)
            except redis.RedisError:
                unforgotten += 1
    _release(queue, kept)
    note = f"; {unforgotten} still counted dead-lettered (Redis failed)" if unforgotten else ""
    return f"{moved} message(s) sent back to {queue.main_url}, {len(kept)} left{note}"


def purge(queue: DeadLetterQueue, selection: Selection, limit: int) -> str:
    """Delete the selected messages for good; the others are released."""
    deleted, kept = 0, []
    for dead in queue.scan(limit):
        if dead in selection:
            queue.delete(dead)
            deleted += 1
        else:
            kept.append(dead)
    _release(queue, kept)
    return f"{deleted} message(s) deleted, {len(kept)} left"


def _scan_and_release(queue: DeadLetterQueue, limit: int) -> list[DeadLetter]:
    scanned = list(queue.scan(limit))
    _release(queue, scanned)
    return scanned


def _release(queue: DeadLetterQueue, messages: Iterable[DeadLetter]) -> None:
    for dead in messages:
        queue.release(dead)


def _row(dead: DeadLetter, now: dt.datetime) -> tuple[str, ...]:
    summary = dead.summary
    return (
        dead.message_id,
        summary.reason,
        summary.event_type or summary.task or "-",
        summary.event_id or "-",
        shown_group(dead.group_id),
        str(dead.receive_count),
        _age(dead, now),
        summary.import_id or "-",
    )


def _age(dead: DeadLetter, now: dt.datetime) -> str:
    seconds = int(max(0.0, dead.age_s(now)))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h" if seconds < 172_800 else f"{seconds // 86400}d"
