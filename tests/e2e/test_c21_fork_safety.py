"""Case C21 end to end: connections opened before a fork are never shared by the children.

Both APIs run under gunicorn with ``--preload -w 4`` and a ``when_ready`` hook
(``support/gunicorn_warm_up.py``) that makes the master call ``/readyz`` (and, for the query API,
a contact lookup) before it forks: PostgreSQL, Redis and SQS connections exist in the master
when its workers are born. The worker's Celery parent does the same before forking a prefork
pool of 4 (``support/warm_worker.py``). Then 500 concurrent GETs of uncached contacts and 500
concurrent commands: every answer must be the one asked for, nothing may log a protocol error,
every child must use PostgreSQL and Redis connections of its own, and a connection it inherited
(the descriptor stays open in the child) must not have carried a single query since the fork.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sqlalchemy as sa

from support.auth import api
from support.processes import BIN, ROOT, Service, free_port
from support.resources import isolated_queues, queue_env
from support.stack import Stack, running_stack

REQUESTS = 500
WORKERS = 4
WARM_UP = str(ROOT / "tests" / "support" / "gunicorn_warm_up.py")
#: Log lines that would betray two processes talking over one socket (or a worker crash).
BROKEN = re.compile(
    r"Traceback|SSL|InterfaceError|OperationalError|ProtocolError|InvalidResponse|"
    r"lost synchronization|server closed the connection|WORKER TIMEOUT|Worker exited|"
    r"unexpected|ERROR|\"level\": \"(error|critical)\"",
)


def gunicorn(name: str, port: int, env: dict[str, str], app: str, *extra: str) -> Service:
    return Service(
        name,
        [
            str(BIN / "gunicorn"),
            *("-c", WARM_UP, "--preload", "--workers", str(WORKERS)),
            *("--bind", f"127.0.0.1:{port}", "--timeout", "30"),
            *("--worker-tmp-dir", "/dev/shm", "--no-control-socket", *extra),
            app,
        ],
        env,
    )


@pytest.fixture(scope="module")
def preforked(
    stack_env: dict[str, str], sqs_client: Any, redis_prefix: str, run_id: str
) -> Iterator[Stack]:
    name = f"t{run_id}-c21"
    command_port, query_port = free_port(), free_port()
    with isolated_queues(sqs_client, name) as urls:
        env = {
            **stack_env,
            "REDIS_PREFIX": f"{redis_prefix}c21:",
            **queue_env(name, urls),
            "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
        }
        query_env = {**env, "WARM_UP_PATH": f"/v1/contacts/{uuid.uuid4()}"}
        services = (
            gunicorn("command-api", command_port, env, "command_api.entrypoints.app:create_app()"),
            gunicorn(
                "query-api",
                query_port,
                query_env,
                "query_api.entrypoints.app:create_app()",
                *("--worker-class", "gthread", "--threads", "4"),
            ),
            Service(
                "worker",
                [
                    str(BIN / "python"),
                    str(ROOT / "tests" / "support" / "warm_worker.py"),
                    *("--pool", "prefork", "--concurrency", str(WORKERS)),
                ],
                env,
            ),
        )
        with running_stack(
            env, *services, command_port=command_port, query_port=query_port
        ) as stack:
            yield stack


def seed_uncached(database_url: str, count: int) -> dict[str, str]:
    """Insert ``count`` live contacts straight into PostgreSQL (the cache never saw them);
    returns id → first name."""
    contacts = {str(uuid.uuid4()): f"Fork{n}" for n in range(count)}
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contacts (id, first_name, version, alive, created_at, updated_at)"
                " VALUES (:id, :name, 1, true, now(), now())"
            ),
            [{"id": i, "name": n} for i, n in contacts.items()],
        )
    engine.dispose()
    return contacts


def process_tree(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {pid}.union(*(process_tree(int(child)) for child in children))


def socket_owners(pids: set[int], server_ports: set[int]) -> dict[int, set[int]]:
    """Local port of every TCP connection to ``server_ports`` held by ``pids`` → the pids that
    hold it (from /proc: socket inodes of each process's descriptors)."""
    by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(remote.rsplit(":", 1)[1], 16) in server_ports:
                by_inode[inode] = int(local.rsplit(":", 1)[1], 16)
    owners: dict[int, set[int]] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().name
            except OSError:
                continue
            inode = target.removeprefix("socket:[").removesuffix("]")
            if target.startswith("socket:[") and inode in by_inode:
                owners.setdefault(by_inode[inode], set()).add(pid)
    return owners


def test_c21_preforked_processes_never_share_a_connection(
    preforked: Stack, stack_env: dict[str, str]
) -> None:
    stack = preforked
    command, query, worker = stack.services
    for service in (command, query):
        assert "warm-up before fork: /readyz 200" in service.log(), service.tail()
    assert "warm-up before fork: /v1/contacts/" in query.log()
    assert "warm-up before fork: PostgreSQL" in worker.log()
    seeded = seed_uncached(stack_env["DATABASE_URL"], REQUESTS)
    tag = f"c21-{uuid.uuid4().hex[:8]}"
    sent = {f"Cmd{n}-{uuid.uuid4().hex[:6]}": None for n in range(REQUESTS)}

    def read(contact_id: str) -> tuple[str, requests.Response]:
        return contact_id, api.get(f"{stack.query_url}/v1/contacts/{contact_id}", timeout=30)

    def write(first_name: str) -> tuple[str, requests.Response]:
        body = {"first_name": first_name, "tags": [tag]}
        return first_name, api.post(f"{stack.command_url}/v1/contacts", json=body, timeout=30)

    started, load_started = time.monotonic(), time.time()
    with ThreadPoolExecutor(100) as pool:
        futures = [pool.submit(read, cid) for cid in seeded]
        futures += [pool.submit(write, name) for name in sent]
        results = [future.result() for future in futures]
    elapsed_s = time.monotonic() - started

    gets = results[:REQUESTS]
    for contact_id, response in gets:
        assert response.status_code == 200, response.text
        assert response.headers["X-Cache"] == "miss"
        assert (response.json()["id"], response.json()["first_name"]) == (
            contact_id,
            seeded[contact_id],
        )
    accepted = {}
    for first_name, response in results[REQUESTS:]:
        assert response.status_code == 202, response.text
        accepted[response.json()["id"]] = first_name
    assert len(accepted) == REQUESTS

    engine = sa.create_engine(stack_env["DATABASE_URL"])
    deadline = time.monotonic() + 120
    stored: dict[str, str] = {}
    while time.monotonic() < deadline and len(stored) < REQUESTS:
        time.sleep(0.5)
        with engine.connect() as conn:
            stored = dict(
                conn.execute(
                    sa.text(
                        "SELECT id::text, first_name FROM contacts"
                        " WHERE id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"ids": list(accepted)},
                ).all()
            )
    applied_s = time.monotonic() - started
    assert stored == accepted
    for contact_id in list(accepted)[:50]:
        got = api.get(f"{stack.query_url}/v1/contacts/{contact_id}", timeout=10)
        assert got.json()["first_name"] == accepted[contact_id]

    pids = set().union(*(process_tree(s.pid) for s in stack.services))
    assert len(pids) == 3 + 3 * WORKERS, "a worker process died or was replaced"
    owners = socket_owners(pids, {5432, 6379})
    now = time.time()
    with engine.connect() as conn:
        idle_s = dict(
            conn.execute(
                sa.text(
                    "SELECT client_port, extract(epoch from now() - query_start)"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND client_port > 0"
                )
            ).all()
        )
    engine.dispose()
    client = redis.Redis.from_url(stack_env["REDIS_URL"])
    for entry in client.client_list():
        idle_s[int(entry["addr"].rsplit(":", 1)[1])] = float(entry["idle"])
    client.close()
    live = {port: holders for port, holders in owners.items() if port in idle_s}
    own = {pid for holders in live.values() if len(holders) == 1 for pid in holders}
    for port, holders in live.items():
        if len(holders) > 1:
            # Inherited from the master: only the master could use it, and nobody did after
            # the fork (the load started long after); the children use connections of their
            # own.
            assert idle_s[port] >= now - load_started - 1, (port, holders, idle_s[port])
    for service in stack.services:
        children = process_tree(service.pid) - {service.pid}
        assert children <= own, f"{service.name}: a child without connections of its own"
        assert not BROKEN.search(service.log()), service.tail(200)
    inherited = sum(len(holders) > 1 for holders in live.values())
    print(
        f"\nC21: {REQUESTS} uncached GETs + {REQUESTS} commands on 3x{WORKERS} forked "
        f"processes answered in {elapsed_s:.1f} s, all applied after {applied_s:.1f} s; "
        f"{len(live) - inherited} connections opened by the children, {inherited} inherited"
        " ones never used after the fork"
    )
