"""``contact-worker-admin``: one-shot set-up commands for a local stack, CI and deploy hooks.

Commands (settings from the environment, see ``contact_worker.settings``):

- ``create-database`` — create the database named in DATABASE_URL if it does not exist.
- ``migrate`` — ``alembic upgrade head`` (``--reader-role NAME`` for the query API's role).
- ``create-queues`` — create the FIFO queue and its dead-letter queue (idempotent).
- ``purge-changes`` — delete the change feed's changes older than ``--older-than-days``
  (default and minimum 7: the feed's token lifetime); run it daily (a CronJob).
- ``purge-inbox`` — drop the payloads (``processed_events.data``) of the events processed more
  than ``--older-than-days`` ago (default ``INBOX_PAYLOAD_RETENTION_DAYS``, 7; minimum 7),
  keeping their ids, sequences and outcomes (``adapters.inbox_retention``); run it daily.
- ``dlq list|show|redrive|purge`` — the dead-letter queue: list dead-lettered events by reason
  (never a field value), show one, send them back to the queue after a fix, or drop them
  (``entrypoints.dlq``).
- ``workspace list`` — every workspace with its live contacts.
- ``workspace erase NAME --yes`` — offboarding: remove every row and Redis key of the workspace, in
  batches, printing what it removed; resumable (run it again after an interruption) and never
  touching another workspace (``adapters.workspaces``).
- ``check-alive`` — the worker's liveness probe: exit 0 while its heartbeat (set after every
  completed SQS receive) is younger than ``Settings.liveness_max_age_s``, else exit 1. It reads
  one file: no broker, database or Redis call (case C26).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from contact_worker import bootstrap
from contact_worker.adapters.change_feed import MIN_RETENTION_DAYS, purge_changes
from contact_worker.adapters.inbox_retention import purge_payloads
from contact_worker.adapters.queues import ensure_queues
from contact_worker.adapters.workspaces import erase_workspace, list_workspaces
from contact_worker.entrypoints import dlq
from contact_worker.entrypoints.watchdog import heartbeat_age_s
from contact_worker.settings import Settings
from contacts_domain.workspaces import InvalidWorkspace

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def create_database(database_url: str) -> bool:
    """Create the database of ``database_url`` via the server's ``postgres`` database.

    Returns whether it was created. Raises ``ValueError`` for a name that is not a plain
    lower-case identifier.
    """
    url = make_url(database_url)
    name = url.database or ""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"refusing to create a database named {name!r}")
    engine = bootstrap.server_engine(database_url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            return not exists
    finally:
        engine.dispose()


def alembic_config(database_url: str, reader_role: str = "contacts_reader") -> Config:
    """The Alembic config of this service, pointed at ``database_url``."""
    if not _IDENTIFIER.match(reader_role):
        raise ValueError(f"refusing reader role {reader_role!r}")
    ini = Path(os.environ.get("ALEMBIC_CONFIG", Path(__file__).parents[3] / "alembic.ini"))
    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.cmd_opts = argparse.Namespace(x=[f"reader_role={reader_role}"])
    return config


def migrate(database_url: str, reader_role: str = "contacts_reader") -> None:
    """Upgrade the schema to the newest revision."""
    command.upgrade(alembic_config(database_url, reader_role), "head")


def check_alive(settings: Settings) -> None:
    """Exit 1 (with one line saying why) unless the heartbeat is younger than
    ``settings.liveness_max_age_s`` seconds; print its age otherwise."""
    age = heartbeat_age_s(settings.heartbeat_file)
    limit = settings.liveness_max_age_s
    if age is None or age > limit:
        shown = "missing" if age is None else f"{age:.0f} s old"
        print(f"NOT ALIVE: heartbeat {settings.heartbeat_file} {shown} (limit {limit} s)")
        sys.exit(1)
    print(f"alive: last receive {age:.1f} s ago (limit {limit} s)")


def purge(settings: Settings, older_than_days: int) -> int:
    """Purge the change feed's changes older than ``older_than_days`` days; returns how many.
    Raises ``ValueError`` below ``MIN_RETENTION_DAYS``."""
    engine = bootstrap.database_engine(settings)
    try:
        return purge_changes(engine, dt.timedelta(days=older_than_days))
    finally:
        engine.dispose()


def purge_inbox(settings: Settings, older_than_days: int | None) -> tuple[int, int]:
    """Purge the inbox's payloads older than ``older_than_days`` days (default
    ``settings.inbox_payload_retention_days``); returns (rows purged, days). Raises
    ``ValueError`` below ``inbox_retention.MIN_PAYLOAD_RETENTION_DAYS``."""
    days = settings.inbox_payload_retention_days if older_than_days is None else older_than_days
    engine = bootstrap.database_engine(settings)
    try:
        return purge_payloads(engine, dt.timedelta(days=days)), days
    finally:
        engine.dispose()


def workspace_command(settings: Settings, action: str, name: str | None) -> None:
    """``workspace list`` (one line per workspace: name and live contacts) or ``workspace erase
    NAME --yes`` (one line per table and key kind, with what it removed). Raises
    ``InvalidWorkspace`` for a name that is not a workspace id."""
    engine = bootstrap.database_engine(settings)
    try:
        if action == "list":
            for workspace, live in list_workspaces(engine):
                print(f"{workspace}\t{live}")
            return
        client = bootstrap.admin_redis(settings)
        try:
            report = erase_workspace(
                engine, client, prefix=settings.redis_prefix, workspace=name or ""
            )
        finally:
            client.close()
        for line in report.lines():
            print(line, flush=True)
    finally:
        engine.dispose()


def create_queues(settings: Settings) -> str:
    """Create (or update) the FIFO queue and its dead-letter queue; returns their URLs, one
    line each."""
    urls = ensure_queues(
        bootstrap.sqs_client(settings),
        name=settings.queue_name,
        dlq_name=settings.dlq_name,
        visibility_timeout_s=settings.visibility_timeout_s,
        max_receive_count=settings.max_receive_count,
    )
    return f"queue {urls.main}\ndead-letter queue {urls.dlq}"


def parser() -> argparse.ArgumentParser:
    """The command line of ``contact-worker-admin`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="contact-worker-admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create-database")
    migrate_parser = sub.add_parser("migrate")
    migrate_parser.add_argument("--reader-role", default="contacts_reader")
    sub.add_parser("create-queues")
    sub.add_parser("check-alive")
    workspace = sub.add_parser("workspace").add_subparsers(dest="action", required=True)
    workspace.add_parser("list")
    erase = workspace.add_parser("erase")
    erase.add_argument("name")
    erase.add_argument("--yes", action="store_true", help="confirm the erasure")
    purge_parser = sub.add_parser("purge-changes")
    purge_parser.add_argument("--older-than-days", type=int, default=MIN_RETENTION_DAYS)
    inbox_parser = sub.add_parser("purge-inbox")
    inbox_parser.add_argument("--older-than-days", type=int, default=None)
    dlq.add_parser(sub)
    return parser


def run_dlq(settings: Settings, args: argparse.Namespace) -> str:
    """Run a ``dlq`` command on the queues of ``settings``; returns what to print. Raises
    ``ValueError`` (a purge without ``--yes``) and ``LookupError`` (``show`` of an unknown
    message), which ``main`` reports as usage errors."""
    queue = bootstrap.dead_letter_queue(settings)
    return dlq.run(args, queue, lambda: bootstrap.import_dead_letters(settings))


def main(argv: list[str] | None = None) -> None:
    """Run one command; a purge shorter than its minimum retention, a ``dlq purge`` without
    ``--yes`` and a ``dlq show`` of an unknown message are usage errors (exit 2)."""
    cli = parser()
    args = cli.parse_args(argv)
    settings = bootstrap.load_settings()
    if args.command == "dlq":
        try:
            print(run_dlq(settings, args))
        except (ValueError, LookupError) as exc:
            cli.error(str(exc).strip("'\""))
    elif args.command == "check-alive":
        check_alive(settings)
    elif args.command == "create-database":
        created = create_database(settings.database_url)
        print("database created" if created else "database exists")
    elif args.command == "migrate":
        migrate(settings.database_url, args.reader_role)
        print("database migrated")
    elif args.command == "workspace":
        if args.action == "erase" and not args.yes:
            cli.error(f"workspace erase removes every contact of {args.name!r} for good: add --yes")
        try:
            workspace_command(settings, args.action, getattr(args, "name", None))
        except InvalidWorkspace as exc:
            cli.error(str(exc))
    elif args.command == "purge-changes":
        try:
            count = purge(settings, args.older_than_days)
        except ValueError as exc:
            cli.error(str(exc))
        print(f"{count} changes older than {args.older_than_days} days purged")
    elif args.command == "purge-inbox":
        try:
            count, days = purge_inbox(settings, args.older_than_days)
        except ValueError as exc:
            cli.error(str(exc))
        print(f"{count} event payloads older than {days} days purged")
    else:
        print(create_queues(settings))


if __name__ == "__main__":
    main()
