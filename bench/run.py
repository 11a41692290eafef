"""``make bench``: every figure of issues 6 and 13 next to its reference, measured in one run.

References of the same run: the framework ceiling (``ceiling_app``), the DRF peer
(``drf_peer``: ``drf_get_rps``, ``drf_list_rps``; the hit and miss rates are shown as
multiples of its GET rate), raw SQS sends and drains, raw Redis and PostgreSQL. EXPLAIN
(ANALYZE) of list, cursor, email-filter, search and change-feed statements in the large and a
small workspace is kept in ``notes.explain``. A figure that cannot be trusted (a cache-miss
repetition with a request that was not a miss) is listed in ``invalid`` and the exit status
is 1.

Run through ``make bench`` (which sources the ``make up`` settings, starts or reuses that stack,
installs ``bench/requirements.txt`` and checks for ``wrk``), or by hand from the repository root::

    set -a; source .env.example; set +a
    .venv/bin/python bench/run.py [--contacts 1000000] [--reps 3] [--profile]

Units: req/s, msg/s, events/s and rows/s are per second of wall time; latencies in ms; RSS in
MiB. Each figure is the median of ``--reps`` repetitions, shown with their min and max.
Results: a table on stdout and ``bench/results/<UTC timestamp>.json`` (git-ignored).

Every repetition also records where the machine's CPU went (``cpuacct``: microseconds of CPU
per request, event, message or row of ours, the references, PostgreSQL, Redis, LocalStack, the
load generator, kernel threads and other processes, and the idle rest), from two ``/proc``
snapshots at its boundaries (~10 ms of CPU each, outside the timed part); the run ends with
that table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import address_book
import cpuacct
import dataset
import psycopg2
import redis
import refs
import stack
import writes
from sqlalchemy.dialects import postgresql

from command_api.adapters.sqs_publisher import SqsTarget
from contact_worker.adapters.queues import ensure_queues
from query_api.adapters.sql_change_feed import CHANGES
from query_api.adapters.sql_read_model import (
    list_statement,
    prefix_counts_statement,
    search_plan,
)
from query_api.service_layer import cursor
from query_api.service_layer.listing import ListFilters, ListRequest, Position, Sort
from query_api.service_layer.token_key import TokenKey

RESULTS = Path(__file__).resolve().parent / "results"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "paths.lua"
RAW_QUEUE = "contacts-bench-raw.fifo"
RAW_DLQ = "contacts-bench-raw-dlq.fifo"
#: First data-set index of the events the benchmark writes (after the loaded contacts).
WRITE_INDEX_BASE = 10_000_000
#: The cache outcome at the end of an access-log line's message.
_CACHE_FIELD = re.compile(r"\bcache=(\S+)")


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Figure:
    """One measured figure: its repetitions, and how it compares with its reference."""

    key: str
    title: str
    unit: str
    samples: list[float] = field(default_factory=list)
    reference: str | None = None
    goal: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    #: 1-minute load average when each repetition ended.
    load: list[float] = field(default_factory=list)
    #: A peer figure this one is shown as a multiple of (the DRF peer), and a goal on it.
    peer: str | None = None
    peer_goal: str | None = None

    def add(self, value: float, detail: dict[str, Any] | None = None) -> None:
        """Record one repetition (and the load average at its end)."""
        self.samples.append(value)
        self.details.append(detail or {})
        self.load.append(round(os.getloadavg()[0], 2))

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples) if self.samples else None,
            "max": max(self.samples) if self.samples else None,
            "samples": self.samples,
            "reference": self.reference,
            "goal": self.goal,
            "peer": self.peer,
            "peer_goal": self.peer_goal,
            "load_1m": self.load,
            "details": self.details,
        }


class Bench:
    """One run: settings, the services it started, and the figures so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.env = stack.bench_environment(os.environ)
        self.dsn = stack.libpq_url(self.env["DATABASE_URL"])
        self.redis_url = self.env["REDIS_URL"]
        self.prefix = stack.BENCH_PREFIX
        self.figures: dict[str, Figure] = {}
        self.notes: dict[str, Any] = {}
        #: Why a figure of this run cannot be trusted (each makes the run exit with status 1).
        self.invalid: list[str] = []
        #: Ids of the contacts the read figures requested (so cached): ``profile_reads``
        #: misses must be other ids.
        self.requested: set[str] = set()
        self.services: dict[str, stack.Service] = {}
        self.ports = {
            name: stack.free_port() for name in ("ceiling", "query", "command", "drf", "floor")
        }
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-", dir=stack.RUN_DIR))
        self.stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    # ----------------------------------------------------------------- helpers
    def figure(self, key: str, title: str, unit: str, **kwargs: Any) -> Figure:
        self.figures[key] = Figure(key, title, unit, **kwargs)
        return self.figures[key]

    def sqs(self) -> Any:
        return refs.sqs_client(
            self.env.get("SQS_ENDPOINT_URL"),
            self.env["AWS_REGION"],
            self.env.get("AWS_ACCESS_KEY_ID") or None,
            self.env.get("AWS_SECRET_ACCESS_KEY") or None,
        )

    def sqs_target(self, queue_url: str) -> SqsTarget:
        """The command API publisher's target for the bench queue at ``queue_url``."""
        return SqsTarget(
            queue_name=stack.BENCH_QUEUE,
            queue_url=queue_url,
            region=self.env["AWS_REGION"],
            endpoint_url=self.env.get("SQS_ENDPOINT_URL") or None,
            access_key_id=self.env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY") or None,
            send_timeout_s=2.0,
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wrk(
        self,
        base_url: str,
        paths: Sequence[str],
        *,
        connections: int,
        seconds: float,
        mean_delay_ms: float = 0.0,
        once: bool = False,
        threads: int = 2,
    ) -> dict[str, Any]:
        """Run wrk (a separate process) over ``paths``; returns its JSON line plus req/s."""
        paths_file = self.tmp / f"paths-{random.getrandbits(32):08x}.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        out = subprocess.run(
            [
                "wrk",
                "-H",
                stack.AUTH_HEADER,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(WRK_SCRIPT),
                base_url,
                "--",
                str(paths_file),
                str(mean_delay_ms),
                "1" if once else "0",
                str(threads),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        paths_file.unlink()
        result = json.loads(out.strip().splitlines()[-1])
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        result["errors"] = sum(v for k, v in result.items() if k.startswith("errors_"))
        return result

    def count_cache(self, service: str, since: int) -> dict[str, int]:
        """``cache=`` outcomes of the access-log lines of ``service`` after byte offset
        ``since`` (``access_outcomes``)."""
        with self.services[service].log_path.open("rb") as f:
            f.seek(since)
            return access_outcomes(f)

    def cpu(self, service: str) -> float:
        """CPU seconds used so far by every process of ``service``."""
        return stack.cpu_seconds(self.services[service].pids())

    def log_size(self, service: str) -> int:
        return self.services[service].log_path.stat().st_size

    def roots(self) -> dict[int, str]:
        """The master pid of every running service the bench started, and its ``cpuacct``
        component: ``ours`` for the product's services, else the reference's name."""
        # The miss's protocol floor is a reference app like the ceiling (its own row says which).
        components = {"ceiling": "ceiling", "drf": "drf", "floor": "ceiling"}
        return {
            service.process.pid: components.get(name, "ours")
            for name, service in self.services.items()
            if service.process is not None
        }

    def accounted(
        self, run: Callable[[], dict[str, Any]], count_key: str = "requests", per: str = "req"
    ) -> dict[str, Any]:
        """``run()`` (one repetition) with ``cpuacct`` snapshots around it: its result gains
        ``cpu``, the CPU per component per ``result[count_key]`` (unit ``per``)."""
        before = cpuacct.snapshot()
        result = run()
        after = cpuacct.snapshot()
        result["cpu"] = {
            "per": per,
            **cpuacct.account(
                before, after, self.roots(), result[count_key], database=stack.BENCH_DATABASE
            ),
        }
        return result

    # ----------------------------------------------------------------- set-up
    def prepare(self) -> None:
        log("Preparing contacts_bench, bench queues and key prefix")
        stack.admin(self.env, "create-database")
        stack.admin(self.env, "migrate")
        stack.admin(self.env, "create-queues")
        ensure_queues(
            self.sqs(),
            name=RAW_QUEUE,
            dlq_name=RAW_DLQ,
            visibility_timeout_s=int(self.env.get("SQS_VISIBILITY_TIMEOUT_S", "60")),
            max_receive_count=int(self.env.get("SQS_MAX_RECEIVE_COUNT", "5")),
        )
        self.clean_writes()

        def recreate() -> None:
            with contextlib.closing(
                psycopg2.connect(stack.with_database(self.dsn, "postgres"))
            ) as conn:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {stack.BENCH_DATABASE} WITH (FORCE)")
            stack.admin(self.env, "create-database")
            stack.admin(self.env, "migrate")

        self.notes["dataset"] = dataset.ensure_loaded(
            self.dsn, self.args.contacts, recreate, log=log
        )
        self.notes["dead_rows_before_figures"] = self.dead_rows()
        log(f"  {vacuumed_state(self.notes['dead_rows_before_figures'])}")

    def dead_rows(self) -> dict[str, dict[str, int]]:
        """Dead and live rows of ``contacts`` and ``contact_changes`` (``dataset.dead_rows``)."""
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn:
            conn.autocommit = True
            counts = dataset.dead_rows(conn, ("contacts", "contact_changes"))
        return {table: {"dead": dead, "live": live} for table, (dead, live) in counts.items()}

    def clean_writes(self) -> None:
        """Forget what earlier runs wrote: contacts created after the loaded set, the inbox,
        the bench's Redis keys, and messages left on the bench queues."""
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('contacts')")
            if cur.fetchone()[0] is not None:
                cur.execute("DELETE FROM contacts WHERE created_at >= %s", (dataset.LOADED_BEFORE,))
                cur.execute("TRUNCATE processed_events")
                conn.commit()
                self.notes["vacuumed"] = dataset.vacuum_if_dead(conn, log=log)
        client = redis.Redis.from_url(self.redis_url)
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{self.prefix}*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        client.close()
        sqs = self.sqs()
        for name in (stack.BENCH_QUEUE, RAW_QUEUE):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            with contextlib.suppress(Exception):
                sqs.purge_queue(QueueUrl=url)

    def start_services(self, only: Sequence[str] | None = None) -> None:
        """Start the ceiling app, the DRF peer, the query API and the command API, or only
        the services named in ``only``."""
        log("Starting the bench's services (ceiling app, DRF peer, query API, command API)")
        env = {**self.env, "QUERY_API_BASE_URL": self.url("query")}
        self.services["ceiling"] = stack.gunicorn_query_api(
            "ceiling", env, self.ports["ceiling"], "ceiling_app:app"
        )
        self.services["query-api"] = stack.gunicorn_query_api(
            "query-api", env, self.ports["query"], "query_api.entrypoints.app:create_app()"
        )
        self.services["floor"] = stack.gunicorn_query_api(
            "floor",
            {**env, "FLOOR_WORKSPACE": dataset.LARGE_WORKSPACE},
            self.ports["floor"],
            "floor_app:app",
        )
        self.services["drf"] = stack.gunicorn_query_api(
            "drf",
            {**env, "DJANGO_SETTINGS_MODULE": "drf_peer.settings"},
            self.ports["drf"],
            "drf_peer.wsgi:application",
        )
        self.services["command-api"] = stack.command_api(env, self.ports["command"])
        if only is not None:
            self.services = {name: self.services[name] for name in only}
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            service.wait_ready()

    def start_worker(self) -> None:
        overrides = dict(item.split("=", 1) for item in self.args.worker_env)
        if overrides:
            self.notes["worker_env"] = overrides
        service = stack.worker({**self.env, **overrides})
        self.services["worker"] = service
        service.start()
        service.wait_ready()

    def stop_all(self) -> None:
        for service in self.services.values():
            service.stop()

    # ----------------------------------------------------------------- reads
    def sample_rows(self, count: int) -> list[tuple[str, dt.datetime, str]]:
        """``count`` random live contacts of the large workspace (the benchmark key's):
        (id, created_at, last_name_key)."""
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id::text, created_at, last_name_key FROM contacts "
                "TABLESAMPLE BERNOULLI (%s) REPEATABLE (7)"
                " WHERE workspace = %s AND alive AND created_at < %s",
                (
                    min(100.0, 100.0 * count * 2.6 / self.args.contacts),  # half are the large's
                    dataset.LARGE_WORKSPACE,
                    dataset.LOADED_BEFORE,
                ),
            )
            rows = cur.fetchall()
        random.Random(1).shuffle(rows)
        if len(rows) < count:
            raise RuntimeError(f"sampled {len(rows)} contacts, wanted {count}")
        return rows[:count]

    def measure_reads(self) -> None:
        a = self.args
        reps, seconds, conns = a.reps, a.seconds, a.connections
        hit_ids = 1000
        per_miss = a.miss_ids
        # The miss and its protocol floor each request ids of their own, once.
        rows = self.sample_rows(hit_ids + 2 * per_miss * (reps + 1) + 500)
        hit_paths = [f"/v1/contacts/{r[0]}" for r in rows[:hit_ids]]
        miss_rows = rows[hit_ids : hit_ids + 2 * per_miss * (reps + 1)]
        miss_paths = [f"/v1/contacts/{r[0]}" for r in miss_rows[0::2]]
        floor_paths = [f"/v1/contacts/{r[0]}" for r in miss_rows[1::2]]
        cursor_rows = rows[-500:]
        self.requested = {r[0] for r in rows}

        log("Warming the cache with the hit set")
        session = stack.api_session()
        sizes = []
        for path in hit_paths:
            answer = session.get(self.url("query") + path, timeout=5)
            answer.raise_for_status()
            sizes.append(len(answer.content))
        body_bytes = int(statistics.median(sizes))
        self.notes["contact_document_bytes"] = body_bytes
        check = session.get(self.url("query") + hit_paths[0], timeout=5)
        if check.headers.get("X-Cache") != "hit":
            raise RuntimeError(f"warm-up left {hit_paths[0]} uncached: {check.headers}")

        ceiling = self.figure("ceiling_rps", "framework ceiling (trivial Flask app)", "req/s")
        hit = self.figure(
            "query_hit_rps",
            f"query API GET /v1/contacts/{{id}} cache hit, {conns} connections",
            "req/s",
            reference="ceiling_rps",
            goal=">= 0.8",
        )
        drf = self.figure(
            "drf_get_rps",
            f"DRF peer GET /v1/contacts/{{id}} (ModelViewSet, PostgreSQL), {conns} connections",
            "req/s",
        )
        hit.peer, hit.peer_goal = "drf_get_rps", ">= 4"
        log(
            f"Ceiling, cache hit and DRF peer: {reps} x {seconds} s each, {conns} connections,"
            " alternating"
        )
        peers = (("ceiling", ceiling), ("query", hit), ("drf", drf))
        if a.miss_only:  # no DRF peer
            peers = peers[:2]
            del self.figures["drf_get_rps"]
            hit.peer = None
        for name, _ in peers:
            self.wrk(self.url(name), hit_paths, connections=conns, seconds=2)
        for _ in range(reps):
            for name, fig in peers:
                service = {"ceiling": "ceiling", "query": "query-api", "drf": "drf"}[name]
                before, cpu = self.log_size("query-api"), self.cpu(service)
                result = self.accounted(
                    functools.partial(
                        self.wrk, self.url(name), hit_paths, connections=conns, seconds=seconds
                    )
                )
                result["service_cpu_s"] = self.cpu(service) - cpu
                result["requests_per_cpu_s"] = result["requests"] / max(
                    result["service_cpu_s"], 1e-3
                )
                if name == "query":
                    result["cache"] = self.count_cache("query-api", before)
                fig.add(result["rps"], result)
                log(
                    f"  {name:8} {result['rps']:8.0f} req/s"
                    f"  p99 {result['lat_p99_us'] / 1000:6.1f} ms"
                )

        if not a.miss_only:
            self.measure_hit_latency(hit_paths)
        self.measure_misses(miss_paths, floor_paths)
        if a.miss_only:
            return
        self.measure_drf_list()
        self.measure_lists(cursor_rows)
        self.measure_raw_redis(body_bytes)

    def measure_hit_latency(self, hit_paths: Sequence[str]) -> None:
        """p99 of the cache hit and of the ceiling at half the hit rate (paced wrk)."""
        a = self.args
        reps, seconds, conns = a.reps, a.seconds, a.connections
        hit = self.figures["query_hit_rps"]
        rate = (hit.median or 0) / 2
        ceiling_latency = self.figure(
            "ceiling_p99_half_rate_ms",
            f"framework ceiling, p99 latency at the same offered rate ({rate:.0f} req/s)",
            "ms",
        )
        latency = self.figure(
            "query_hit_p99_half_rate_ms",
            f"same, p99 latency at half that rate ({rate:.0f} req/s offered)",
            "ms",
            reference="ceiling_p99_half_rate_ms",
            goal="<= 1.5 x",
        )
        log(f"Cache-hit latency at ~{rate:.0f} req/s (paced wrk, {conns} connections)")
        for _ in range(reps):
            for fig, name in ((ceiling_latency, "ceiling"), (latency, "query")):
                result = self.accounted(
                    functools.partial(
                        self.wrk,
                        self.url(name),
                        hit_paths,
                        connections=conns,
                        seconds=seconds,
                        mean_delay_ms=1000 * conns / rate,
                    )
                )
                fig.add(result["lat_p99_us"] / 1000, result)
                log(
                    f"  {name:8} {result['rps']:6.0f} req/s  p50 {result['lat_p50_us'] / 1000:5.2f}"
                    f" ms  p99 {result['lat_p99_us'] / 1000:6.2f} ms"
                )

    def measure_misses(self, miss_paths: Sequence[str], floor_paths: Sequence[str]) -> None:
        """The cache-miss figure: every id of ``miss_paths`` requested once, each repetition's
        access log checked (``check_all_misses``); each repetition follows one of the miss's
        protocol floor (``floor_app``) on ``floor_paths``, ids of its own."""
        a = self.args
        reps, seconds, conns = a.reps, a.seconds, a.connections
        per_miss = a.miss_ids
        miss = self.figure(
            "query_miss_rps",
            "query API cache miss (Redis empty, PostgreSQL hit)",
            "req/s",
            reference="ceiling_rps",
            goal=">= 0.5",
        )
        miss.peer = None if a.miss_only else "drf_get_rps"
        floor = self.figure(
            "miss_floor_rps",
            "protocol floor of a miss (trivial Flask app, only its 2 round trips: floor_app)",
            "req/s",
            reference="ceiling_rps",
        )
        log(f"Cache miss and its protocol floor: {reps} x {seconds} s each, every id once")
        chunks = [miss_paths[i * per_miss : (i + 1) * per_miss] for i in range(reps + 1)]
        floor_chunks = [floor_paths[i * per_miss : (i + 1) * per_miss] for i in range(reps + 1)]
        self.wrk(self.url("query"), chunks[-1], connections=conns, seconds=1, once=True)
        self.wrk(self.url("floor"), floor_chunks[-1], connections=conns, seconds=1, once=True)
        for chunk, floor_chunk in zip(chunks[:reps], floor_chunks[:reps], strict=True):
            result = self.accounted(
                functools.partial(
                    self.wrk,
                    self.url("floor"),
                    floor_chunk,
                    connections=conns,
                    seconds=seconds,
                    once=True,
                )
            )
            floor.add(result["rps"], result)
            log(f"  floor {result['rps']:8.0f} req/s  p99 {result['lat_p99_us'] / 1000:6.1f} ms")
            self.measure_miss_once(miss, chunk)
        if miss.median and floor.median:
            share = miss.median / floor.median
            self.notes["miss_of_floor"] = round(share, 2)
            log(f"  the cache miss served {share:.2f} x its protocol floor's req/s")

    def measure_miss_once(self, miss: Figure, chunk: Sequence[str]) -> None:
        """One cache-miss repetition over ``chunk`` (each path once), added to ``miss``."""
        a = self.args
        before, cpu = self.log_size("query-api"), self.cpu("query-api")
        result = self.accounted(
            functools.partial(
                self.wrk,
                self.url("query"),
                chunk,
                connections=a.connections,
                seconds=a.seconds,
                once=True,
            )
        )
        result["service_cpu_s"] = self.cpu("query-api") - cpu
        result["requests_per_cpu_s"] = result["requests"] / max(result["service_cpu_s"], 1e-3)
        time.sleep(0.5)  # the access lines of the last responses
        result["cache"] = self.count_cache("query-api", before)
        if result["repeated"]:
            log(f"  warning: {result['repeated']} requests repeated an id (raise --miss-ids)")
        problem = check_all_misses(result["cache"], result["requests"])
        if problem is not None:
            self.invalid.append(f"cache miss figure: {problem}")
            log(f"  INVALID: {problem}")
        miss.add(result["rps"], result)
        log(
            f"  miss  {result['rps']:8.0f} req/s"
            f"  p99 {result['lat_p99_us'] / 1000:6.1f} ms"
            f"  access log: {result['cache'].get('miss', 0)} of {result['requests']} cache=miss"
        )

    def measure_raw_redis(self, body_bytes: int) -> None:
        """Raw Redis GET of a contact-sized value (redis-benchmark)."""
        a = self.args
        reps, conns = a.reps, a.connections
        log(f"Raw Redis GET of {body_bytes} bytes (redis-benchmark, {conns} clients)")
        redis_fig = self.figure("redis_get_rps", f"raw Redis GET, {body_bytes} B value", "req/s")
        host_port = self.redis_url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        host, port = host_port.split(":") if ":" in host_port else (host_port, "6379")
        for _ in range(reps):
            result = self.accounted(
                lambda: (
                    refs.redis_get(host, int(port), body_bytes, conns, a.redis_requests)
                    | {"requests": 2 * a.redis_requests}
                ),  # redis-benchmark -t set,get
            )
            redis_fig.add(result["rps"], result)
            log(f"  {result['rps']:8.0f} req/s  p99 {result['p99_ms']:.2f} ms")

    def measure_drf_list(self) -> None:
        """The DRF peer's first list page (``CursorPagination``, 20 by creation time), closed
        loop at the GET figures' connections: ``drf_list_rps``."""
        a = self.args
        fig = self.figure(
            "drf_list_rps",
            f"DRF peer GET /v1/contacts (first page of 20), {a.connections} connections",
            "req/s",
        )
        log(f"DRF peer list: {a.reps} x {a.seconds} s, {a.connections} connections")
        paths = ["/v1/contacts"]
        self.wrk(self.url("drf"), paths, connections=a.connections, seconds=1)
        for _ in range(a.reps):
            result = self.accounted(
                lambda: self.wrk(
                    self.url("drf"), paths, connections=a.connections, seconds=a.seconds
                )
            )
            fig.add(result["rps"], result)
            log(
                f"  {result['rps']:8.0f} req/s  p99 {result['lat_p99_us'] / 1000:6.1f} ms"
                f"  errors {result['errors']}"
            )

    def measure_lists(self, cursor_rows: Sequence[tuple[str, dt.datetime, str]]) -> None:
        a = self.args
        reps, seconds = a.reps, a.seconds
        list_paths = ["/v1/contacts?limit=20", "/v1/contacts?limit=20&sort=last_name"]
        # Signed as the bench's query API signs them (its QUERY_TOKEN_SECRET, or none).
        token_key = TokenKey.of(self.env.get("QUERY_TOKEN_SECRET", ""))
        for n, (contact_id, created_at, last_name_key) in enumerate(cursor_rows):
            sort = Sort.parse(("created_at", "-created_at", "last_name", "-last_name")[n % 4])
            key = created_at if sort.key == "created_at" else last_name_key
            position = Position(key, contact_id)
            token = cursor.encode(
                dataset.LARGE_WORKSPACE, sort, ListFilters(), position, key=token_key
            )
            list_paths.append(f"/v1/contacts?limit=20&cursor={token}")
        prefixes = sorted({r[2][:3] for r in cursor_rows if len(r[2]) >= 3})
        search_paths = [f"/v1/contacts?limit=20&q={p}" for p in prefixes]
        self.notes["search_prefixes"] = len(prefixes)
        conns, delay = a.list_connections, a.list_delay_ms
        for key, title, paths in (
            ("list_p99_ms", "list page (limit=20, first and cursor pages)", list_paths),
            ("search_p99_ms", "prefix search q=<3 letters> (limit=20)", search_paths),
        ):
            fig = self.figure(key, f"{title} at {a.contacts:,} contacts, p99", "ms", goal="<= 20")
            log(
                f"{title}: {reps} x {seconds} s, {conns} connections"
                f" paced at ~{1000 * conns / delay:.0f} req/s"
            )
            random.Random(key).shuffle(paths)
            self.wrk(self.url("query"), paths, connections=conns, seconds=1, mean_delay_ms=delay)
            for _ in range(reps):
                result = self.accounted(
                    functools.partial(
                        self.wrk,
                        self.url("query"),
                        paths,
                        connections=conns,
                        seconds=seconds,
                        mean_delay_ms=delay,
                    )
                )
                fig.add(result["lat_p99_us"] / 1000, result)
                log(
                    f"  {result['rps']:6.0f} req/s  p50 {result['lat_p50_us'] / 1000:5.1f} ms"
                    f"  p99 {result['lat_p99_us'] / 1000:6.1f} ms  errors {result['errors']}"
                )
        self.notes["explain"] = self.explain(self.extreme_prefixes(prefixes))
        self.notes["explain_index_scans_only"] = all(
            plan["index_scans_only"] for plan in self.notes["explain"].values()
        )

    def extreme_prefixes(self, prefixes: Sequence[str]) -> list[str]:
        """Of the searched prefixes, the ones with the most and the fewest last names."""
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT left(last_name_key, 3), count(*) FROM contacts WHERE workspace = %s"
                " AND alive AND left(last_name_key, 3) = ANY(%s) GROUP BY 1 ORDER BY 2 DESC, 1",
                (dataset.LARGE_WORKSPACE, list(prefixes)),
            )
            counts = cur.fetchall()
        self.notes["search_prefix_matches"] = {"most": counts[0], "fewest": counts[-1]}
        return [counts[0][0], counts[-1][0]]

    def explain(self, prefixes: Sequence[str]) -> dict[str, Any]:
        """EXPLAIN (ANALYZE, BUFFERS) of the query API's own statements (issue 12 item 7), run
        as its role, in the large workspace and (cases named ``small:``) in a small one
        (``dataset.small_workspace``): first pages and cursor pages of both sort keys (built by
        ``sql_read_model.list_statement``, limit 21 as the API reads), the email filter, the
        searches of ``prefixes`` (the plan its density check picks, with the counts statement
        that picks it) and a page of the change feed (``sql_change_feed.CHANGES``, from its
        start, 101 rows as the API reads). Cursors and the email are those of a live contact
        in the middle of each workspace.

        ``index_scans_only``: no sequential scan; ``rows_removed_by_filter``: rows an index scan
        read and threw away (a large number means the index only gives the order, not the
        match)."""
        plans: dict[str, Any] = {}
        reader = stack.libpq_url(self.env["QUERY_DATABASE_URL"])
        with contextlib.closing(psycopg2.connect(reader)) as conn, conn.cursor() as cur:
            for workspace, label in (
                (dataset.LARGE_WORKSPACE, ""),
                (dataset.small_workspace(), "small: "),
            ):
                for name, request in self.explain_cases(cur, workspace, prefixes).items():
                    if request.filters.q is not None:
                        counts = prefix_counts_statement(workspace, request.filters.q).compile(
                            dialect=postgresql.psycopg2.dialect()
                        )
                        plans[f"{label}{name} (counts)"] = _explain(cur, counts)
                    plans[label + name] = _explain(
                        cur, self.list_statement(cur, workspace, request)
                    )
                cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                feed = {"workspace": workspace, "txid": "0", "position": 0, "limit": 101}
                feed["bound"] = cur.fetchone()[0]
                page = CHANGES.bindparams(**feed).compile(dialect=postgresql.psycopg2.dialect())
                plans[label + "change feed"] = _explain(cur, page)
        return plans

    @staticmethod
    def explain_cases(cur: Any, workspace: str, prefixes: Sequence[str]) -> dict[str, ListRequest]:
        """The list requests ``explain`` runs in ``workspace``: cursors and the email filter
        of its middle live contact (by id)."""
        cur.execute(
            "SELECT id::text, created_at, last_name_key, email_key FROM contacts"
            " WHERE workspace = %s AND alive AND email_key IS NOT NULL ORDER BY id"
            " OFFSET (SELECT count(*) / 2 FROM contacts WHERE workspace = %s AND alive) LIMIT 1",
            (workspace, workspace),
        )
        contact_id, created_at, last_name_key, email_key = cur.fetchone()
        return {
            "first page, created_at": ListRequest(Sort.parse("created_at")),
            "first page, last_name": ListRequest(Sort.parse("last_name")),
            "cursor page, -created_at": ListRequest(
                Sort.parse("-created_at"), after=Position(created_at, contact_id)
            ),
            "cursor page, last_name": ListRequest(
                Sort.parse("last_name"), after=Position(last_name_key, contact_id)
            ),
            "email filter": ListRequest(filters=ListFilters(email_key=email_key)),
            **{
                f"search q={prefix}": ListRequest(filters=ListFilters(q=prefix))
                for prefix in prefixes
            },
        }

    @staticmethod
    def list_statement(cur: Any, workspace: str, request: ListRequest) -> Any:
        """The compiled list statement the API runs for ``request`` in ``workspace``."""
        candidates = False
        if request.filters.q is not None:  # the plan the API picks for this prefix
            count = prefix_counts_statement(workspace, request.filters.q).compile(
                dialect=postgresql.psycopg2.dialect()
            )
            cur.execute(str(count), count.params)
            candidates = search_plan(request.sort, tuple(cur.fetchone())) == "candidates"
        statement = list_statement(workspace, request, request.limit + 1, candidates=candidates)
        return statement.compile(dialect=postgresql.psycopg2.dialect())

    # ----------------------------------------------------------------- writes
    def measure_writes(self) -> None:
        a = self.args
        reps, seconds = a.reps, a.seconds
        sqs = self.sqs()
        queue_url = sqs.get_queue_url(QueueName=stack.BENCH_QUEUE)["QueueUrl"]
        raw_url = sqs.get_queue_url(QueueName=RAW_QUEUE)["QueueUrl"]
        target = self.sqs_target(queue_url)
        total, count = a.contacts, a.drain_events
        first = total + 1  # events after the loaded set
        built = 1000 if a.post_only else count  # --post-only needs only the message size
        log(f"Building {built:,} events as the command API sends them, and their rows")
        messages = writes.command_api_messages(target, first, first + built, total)
        skip_rows = a.worker_only or a.post_only
        rows = [] if skip_rows else list(dataset.worker_rows(first, first + count, total))
        self.notes["message_body_bytes"] = int(
            statistics.median(len(m["MessageBody"]) for m in messages[:1000])
        )

        make = self.sqs
        if not a.worker_only:
            # Command API acceptance vs raw SendMessage, same concurrency; no consumer meanwhile.
            post = self.figure(
                "command_post_rps",
                f"command API POST /v1/contacts accepted, {a.post_connections} connections",
                "req/s",
                reference="sqs_send_rps",
                goal=">= 0.8",
            )
            send = self.figure(
                "sqs_send_rps",
                f"raw SQS SendMessage, one process, {a.post_connections} threads",
                "msg/s",
            )
            post_paths = self.post_lua()
            log(f"POST accepted vs raw SendMessage: {reps} x {seconds} s each, alternating")
            body = messages[0]["MessageBody"]
            # One second of each first, unmeasured: the reference's threads and the command
            # API's processes open their connections (to SQS, and wrk's) before either counts.
            refs.sqs_send(make, raw_url, body, a.post_connections, 1)
            self.wrk_post(post_paths, a.post_connections, 1)
            for _ in range(reps):
                cpu = self.cpu("command-api")
                result = self.accounted(
                    lambda: self.wrk_post(post_paths, a.post_connections, seconds)
                )
                result["service_cpu_s"] = self.cpu("command-api") - cpu
                result["requests_per_cpu_s"] = result["requests"] / max(
                    result["service_cpu_s"], 1e-3
                )
                post.add(result["rps"], result)
                raw = self.accounted(
                    lambda: refs.sqs_send(make, raw_url, body, a.post_connections, seconds),
                    "sent",
                    "msg",
                )
                send.add(raw["rps"], raw)
                log(
                    f"  POST {result['rps']:6.0f} req/s (non-202: {result['errors_status']})"
                    f"   SendMessage {raw['rps']:6.0f} msg/s"
                )
            for url in (queue_url, raw_url):
                sqs.purge_queue(QueueUrl=url)
            time.sleep(1)
            if a.post_only:
                return

            upsert = self.figure(
                "pg_upsert_rps",
                "raw PostgreSQL batched upsert (INSERT ... ON CONFLICT DO UPDATE, 500 rows)",
                "rows/s",
            )
            log(f"Raw PostgreSQL upsert of the same {count:,} rows: {reps} x")
            for _ in range(reps):
                result = self.accounted(lambda: refs.pg_upsert(self.dsn, rows), "rows", "row")
                upsert.add(result["rps"], result)
                log(f"  {result['rps']:8.0f} rows/s")

        self.measure_drain(raw_url, messages)  # the worker's reference, in every mode
        worker = self.figure(
            "worker_events_rps",
            f"worker events applied (PostgreSQL + Redis), queue pre-filled with {count:,}",
            "events/s",
            reference="sqs_drain_rps",
            goal=">= 0.5",
        )
        log(f"Worker: pre-fill {count:,} events, start it, {reps} windows of {a.worker_window} s")
        refs.sqs_fill(make, queue_url, messages)
        writes.wait_until(lambda: refs.queue_depth(sqs, queue_url)[0] >= count, 30)
        since = dt.datetime.now(dt.UTC)
        self.start_worker()
        writes.wait_until(lambda: writes.processed_since(self.dsn, since)[0] > 0, 30, 0.05)
        time.sleep(2)  # past start-up: prefetch filled, connections open
        last_n, last_t = writes.processed_since(self.dsn, since)[0], time.perf_counter()
        last_cpu = self.cpu("worker")
        last_snapshot = cpuacct.snapshot()
        profile = None
        for window in range(reps):
            if self.args.profile and window == reps - 1:
                profile = self.start_profiles("worker", a.worker_window)
            time.sleep(a.worker_window)
            snapshot = cpuacct.snapshot()
            n, t = writes.processed_since(self.dsn, since)[0], time.perf_counter()
            rate = (n - last_n) / (t - last_t)
            cpu = self.cpu("worker")
            spent = cpuacct.account(
                last_snapshot, snapshot, self.roots(), n - last_n, database=stack.BENCH_DATABASE
            )
            last_snapshot = snapshot
            worker.add(
                rate,
                {
                    "events": n - last_n,
                    "seconds": t - last_t,
                    "service_cpu_s": cpu - last_cpu,
                    "events_per_cpu_s": (n - last_n) / max(cpu - last_cpu, 1e-3),
                    "cpu": {"per": "event", **spent},
                },
            )
            last_cpu = cpu
            log(f"  window {window + 1}: {rate:6.1f} events/s ({n:,} applied so far)")
            last_n, last_t = n, t
            if n >= count:
                log("  warning: the queue ran dry; raise --drain-events")
                break
        if profile:
            self.finish_profiles(profile, "drain")
        sqs.purge_queue(QueueUrl=queue_url)
        writes.wait_until(lambda: refs.queue_depth(sqs, queue_url) == (0, 0), 60, 0.5)
        time.sleep(2)

        if not a.worker_only:
            self.measure_freshness(worker.median or 1.0)

    def measure_import(self) -> None:
        """The import figures (issue 13): the largest import allowed by default, a vCard file
        of ``--import-cards`` cards (``address_book``, as ``bench/imports.py`` builds it), POSTed
        to the bench's command API; seconds until its 202 and until the query API reports every
        record applied, by the bench's one worker (started here if no figure started it).
        Each repetition's cards have emails of their own domain, so each creates new contacts."""
        a = self.args
        if "worker" not in self.services:
            self.start_worker()
        cards = a.import_cards
        sqs = self.sqs()
        queue_url = sqs.get_queue_url(QueueName=stack.BENCH_QUEUE)["QueueUrl"]
        raw_url = sqs.get_queue_url(QueueName=RAW_QUEUE)["QueueUrl"]
        accepted = self.figure(
            "import_202_s",
            f"import of {cards:,} vCards (~10 MB): POST /v1/imports -> 202",
            "s",
            reference="import_raw_send_s",
            goal="<= 3",
        )
        raw = self.figure(
            "import_raw_send_s",
            "raw SendMessageBatch of the import's messages, 10 per call, 8 threads",
            "s",
        )
        applied = self.figure(
            "import_applied_s",
            f"import of {cards:,} vCards: POST -> all applied (one worker, GET /v1/imports)",
            "s",
            goal="<= 20",
        )
        log(f"Import of {cards:,} cards: {a.import_reps} x (POST /v1/imports, then until applied)")
        for rep in range(a.import_reps):
            seconds, result = self.import_once(rep, queue_url, raw_url)
            raw.add(seconds)
            accepted.add(result["accepted_s"], result)
            applied.add(result["applied_s"], result)
            if result["state"] != "queued":  # completed, yet not every record was queued
                self.invalid.append(f"import figure: state {result['state']} (rep {rep + 1})")
            log(
                f"  raw SendMessageBatch of its messages {seconds:5.2f} s;"
                f" 202 after {result['accepted_s']:5.2f} s, all applied after"
                f" {result['applied_s']:5.2f} s ({result['applied']:,} applied,"
                f" {result['rejected']} rejected; CPU s: command API"
                f" {result['command-api_cpu_s']:.1f}, worker {result['worker_cpu_s']:.1f})"
            )
        if a.profile:
            self.profile_import()

    def profile_import(self) -> None:
        """An extra, uncounted import under py-spy: the command API for ``--seconds`` × 2 s
        from its POST (the request), the worker for 20 s (its apply of the imported events)."""
        log("Profiling an extra import (command API and worker)")
        domain = f"import-{self.stamp.lower()}-profile.example.com"
        body = address_book.address_book(self.args.import_cards, domain=domain)
        profiles = self.start_profiles("command-api", self.args.seconds * 2)
        profiles += self.start_profiles("worker", 20)
        writes.time_import(self.url("command"), self.url("query"), body, f"bench-{self.stamp}-p")
        self.finish_profiles(profiles, "import")

    def import_once(self, rep: int, queue_url: str, raw_url: str) -> tuple[float, dict[str, Any]]:
        """One repetition of the import figures: the raw reference (the import's own messages,
        built as the command API builds them, sent to the raw queue by ``refs.sqs_fill`` and
        purged), then the import itself (``writes.time_import``) with the CPU seconds of the
        command API and the worker meanwhile. Returns (raw seconds, the import's result)."""
        domain = f"import-{self.stamp.lower()}-{rep}.example.com"
        body = address_book.address_book(self.args.import_cards, domain=domain)
        messages = writes.import_messages(self.sqs_target(queue_url), body)
        seconds = refs.sqs_fill(self.sqs, raw_url, messages)
        self.sqs().purge_queue(QueueUrl=raw_url)
        del messages
        cpu = {name: self.cpu(name) for name in ("command-api", "worker")}
        result = writes.time_import(
            self.url("command"), self.url("query"), body, f"bench-{self.stamp}-{rep}"
        )
        for name, before in cpu.items():
            result[f"{name}_cpu_s"] = self.cpu(name) - before
        return seconds, result

    def measure_drain(self, raw_url: str, messages: list[dict[str, Any]]) -> None:
        """The raw drain of ``messages`` pre-filled in the queue ``raw_url`` (ReceiveMessage 10
        + DeleteMessageBatch, one consumer), ``reps`` times: the worker's reference."""
        a, sqs, make = self.args, self.sqs(), self.sqs
        reps, count = a.reps, len(messages)
        drain = self.figure(
            "sqs_drain_rps",
            f"raw SQS drain of {count:,} queued (ReceiveMessage 10 + DeleteMessageBatch)",
            "msg/s",
        )
        log(f"Raw drain of {count:,} pre-filled messages: {reps} x")
        for rep in range(reps):
            copies = [
                {**m, "MessageDeduplicationId": f"{m['MessageDeduplicationId'][:60]}-r{rep}"}
                for m in messages
            ]
            refs.sqs_fill(make, raw_url, copies)
            writes.wait_until(lambda: refs.queue_depth(sqs, raw_url)[0] >= count, 30)
            result = self.accounted(lambda: refs.sqs_drain(sqs, raw_url, count), "deleted", "msg")
            drain.add(result["rps"], result)
            log(f"  {result['rps']:8.0f} msg/s")

    def post_lua(self) -> Path:
        """A wrk script that POSTs a new contact (unique email) per request."""
        script = self.tmp / "post.lua"
        script.write_text(
            """
local n = 0
function setup(thread) thread:set("tid", n); n = n + 1 end
function init(args) count = 0 end
function request()
  count = count + 1
  local body = string.format(
    '{"first_name":"Bench","last_name":"Post","email":"post-%d-%d-%d@example.com",' ..
    '"phone":"+12125550100","company":"Acme","tags":["bench"]}', tid, count, os.time())
  return wrk.format("POST", "/v1/contacts", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer BENCH_API_KEY"}, body)
end
function done(summary, latency, requests)
  io.write(string.format('{"requests": %d, "duration_us": %d, "errors_status": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_timeout": %d, "lat_p50_us": %d, ' ..
    '"lat_p99_us": %d}\\n', summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
        )
        script.write_text(script.read_text().replace("BENCH_API_KEY", stack.BENCH_API_KEY))
        return script

    def wrk_post(self, script: Path, connections: int, seconds: float) -> dict[str, Any]:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                self.url("command"),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        accepted = result["requests"] - result["errors_status"]
        result["rps"] = accepted / (result["duration_us"] / 1e6)
        return result

    def freshness_idle(self, first_index: int, trace: list[dict[str, Any]]) -> dict[str, Any]:
        """One idle-freshness repetition (``writes.freshness_idle``, its writes appended to
        ``trace``): its ``samples`` (ms) and how many ``writes``."""
        count = self.args.fresh_writes
        samples = writes.freshness_idle(
            self.url("command"), self.url("query"), first_index, count, trace=trace
        )
        return {"samples": samples, "writes": count}

    def measure_freshness_idle(self) -> int:
        """The idle freshness figures (p50, p99) and where their time went (the notes'
        ``freshness_idle_segments``: ``writes.freshness_segments``); returns the next free
        write index."""
        a = self.args
        idle = self.figure(
            "freshness_idle_p50_ms",
            f"freshness POST -> applied, idle, p50 ({a.fresh_writes} single writes)",
            "ms",
            goal="<= 20",
        )
        idle99 = self.figure(
            "freshness_idle_p99_ms",
            f"freshness POST -> applied, idle, p99 ({a.fresh_writes} single writes)",
            "ms",
            goal="<= 60",
        )
        log(f"Freshness, idle: {a.reps} x {a.fresh_writes} single writes")
        index = WRITE_INDEX_BASE
        trace: list[dict[str, Any]] = []
        for _ in range(a.reps):
            run = self.accounted(
                functools.partial(self.freshness_idle, index, trace), "writes", "write"
            )
            samples = run["samples"]
            index += a.fresh_writes
            p50, p99 = writes.percentile(samples, 50), writes.percentile(samples, 99)
            idle.add(p50, {"max_ms": max(samples), "cpu": run["cpu"]})
            idle99.add(p99, {"max_ms": max(samples), "cpu": run["cpu"]})
            log(f"  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {max(samples):6.1f} ms")
        time.sleep(0.5)  # the last lines of the worker's log
        with self.services["worker"].log_path.open(errors="replace") as lines:
            segments = writes.freshness_segments(trace, lines)
        self.notes["freshness_idle_segments"] = segments
        for name, spans in segments.items():
            log(
                f"  {name:<24} p50 {spans['p50_ms']:6.1f}  p90 {spans['p90_ms']:6.1f}"
                f"  p99 {spans['p99_ms']:6.1f} ms ({spans['writes']} writes)"
            )
        return index

    def measure_freshness(self, worker_rate: float) -> None:
        """The freshness figures: idle (``measure_freshness_idle``), then under load at half
        ``worker_rate`` (events/s)."""
        a = self.args
        index = self.measure_freshness_idle()
        rate = worker_rate / 2
        loaded = self.figure(
            "freshness_load_p99_ms",
            f"freshness under {rate:.0f} writes/s (50% of worker capacity), p99",
            "ms",
            goal="<= 500",
        )
        log(f"Freshness under load: {a.reps} x {a.load_seconds} s at {rate:.0f} POST/s")
        sqs = self.sqs()
        queue_url = sqs.get_queue_url(QueueName=stack.BENCH_QUEUE)["QueueUrl"]
        for _ in range(a.reps):
            result = self.accounted(
                functools.partial(
                    writes.freshness_under_load,
                    self.url("command"),
                    self.redis_url,
                    self.prefix,
                    index,
                    rate,
                    a.load_seconds,
                ),
                "sent",
                "write",
            )
            index += 100_000
            samples = result.pop("samples_ms")
            p99 = writes.percentile(samples, 99)
            result.update(p50_ms=writes.percentile(samples, 50), p99_ms=p99, max_ms=max(samples))
            loaded.add(p99, result)
            log(
                f"  {result['rate']:5.1f} POST/s  p50 {result['p50_ms']:6.1f} ms"
                f"  p99 {p99:7.1f} ms  unfinished {result['unfinished']}"
                f"  refused (503) {result['refused']}"
            )
            if result["rate"] < 0.9 * rate:  # the machine's CPUs, not the pacing: say so
                log(
                    f"  warning: only {result['rate']:.0f} of {rate:.0f} POST/s were sent (each"
                    " sender waits for its 202): this figure is under that lower rate"
                )
            writes.wait_until(lambda: refs.queue_depth(sqs, queue_url) == (0, 0), 60, 0.5)

    # ----------------------------------------------------------------- profiles
    def start_profiles(
        self, service: str, seconds: float, *, gil: bool = False
    ) -> list[tuple[str, subprocess.Popen[bytes]]]:
        """py-spy (sampling, 100 Hz) on every process of ``service`` for ``seconds`` s; with
        ``gil``, only the samples of the thread holding the GIL (our Python CPU, without the
        threads blocked in a socket call, which py-spy otherwise counts as running here)."""
        started = []
        for pid in self.services[service].pids():
            out = self.tmp / f"profile-{service}-{pid}.txt"
            process = subprocess.Popen(
                [
                    str(stack.BIN / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--nonblocking",
                    *(["--gil"] if gil else []),
                    "--output",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append((f"{service}/{pid}", process))
        return started

    def finish_profiles(
        self, started: list[tuple[str, subprocess.Popen[bytes]]], label: str
    ) -> None:
        """Wait for the profilers; keep a summary per process under ``label`` in the notes and
        the raw collapsed stacks next to the results."""
        RESULTS.mkdir(exist_ok=True)
        for name, process in started:
            process.wait(60)
            service, pid = name.split("/")
            path = self.tmp / f"profile-{service}-{pid}.txt"
            if path.exists():
                self.notes.setdefault("profiles", {})[f"{label} {name}"] = summarize_profile(path)
                kept = RESULTS / f"{self.stamp}-profile-{label}-{service}-{pid}.txt"
                kept.write_text(path.read_text())

    def profile_reads(self) -> None:
        """Extra, uncounted runs of the hit, miss and search loads under py-spy. The miss load
        requests only ids the measured figures did not (the same sample, taken larger, held
        ~77% of them: already cached, so mostly hits)."""
        sampled = self.sample_rows(1000 + 20000 + len(self.requested))
        rows = [r for r in sampled if r[0] not in self.requested][: 1000 + 20000]
        hit_paths = [f"/v1/contacts/{r[0]}" for r in rows[:1000]]
        miss_paths = [f"/v1/contacts/{r[0]}" for r in rows[1000:]]
        prefixes = sorted({r[2][:3] for r in rows[:1000] if len(r[2]) >= 3})
        for label, paths, once in (
            ("hit", hit_paths, False),
            ("miss", miss_paths, True),
            ("search", [f"/v1/contacts?limit=20&q={p}" for p in prefixes], False),
        ):
            log(f"Profiling the query API under the {label} load")
            profiles = self.start_profiles("query-api", self.args.seconds)
            self.wrk(
                self.url("query"),
                paths,
                connections=self.args.connections,
                seconds=self.args.seconds,
                once=once,
            )
            self.finish_profiles(profiles, label)

    def profile_misses(self) -> None:
        """An extra, uncounted cache-miss load under ``py-spy --gil`` (``--miss-only
        --profile``): ids neither figure requested."""
        sampled = self.sample_rows(self.args.miss_ids + len(self.requested))
        rows = [r for r in sampled if r[0] not in self.requested][: self.args.miss_ids]
        log("Profiling the query API under the miss load (py-spy --gil)")
        profiles = self.start_profiles("query-api", self.args.seconds, gil=True)
        self.wrk(
            self.url("query"),
            [f"/v1/contacts/{r[0]}" for r in rows],
            connections=self.args.connections,
            seconds=self.args.seconds,
            once=True,
        )
        self.finish_profiles(profiles, "miss-gil")

    # ----------------------------------------------------------------- report
    def rss(self) -> None:
        rss = self.figure(
            "rss_max_mb", "largest RSS of a service process after the run", "MiB", goal="<= 120"
        )
        processes = []
        for name, service in self.services.items():
            if name in ("ceiling", "drf"):  # references, not the product
                continue
            for pid in service.pids():
                mb = stack.rss_mb(pid)
                if mb is not None:
                    processes.append(
                        {
                            "service": name,
                            "pid": pid,
                            "rss_mb": round(mb, 1),
                            "command": stack.command_line(pid),
                        }
                    )
        rss.add(max(p["rss_mb"] for p in processes), {"processes": processes})


def vacuumed_state(counts: dict[str, dict[str, int]]) -> str:
    """The line that says which table state the figures measured (``Bench.dead_rows``)."""
    shown = ", ".join(
        f"{table} {c['dead']:,} dead rows of {c['live']:,} live"
        f" ({100 * c['dead'] / max(c['live'], 1):.2f}%)"
        for table, c in sorted(counts.items())
    )
    return (
        f"figures measured on vacuumed tables ({shown}): RDS autovacuums; this machine's"
        f" PostgreSQL does not, so the bench vacuums past {dataset.DEAD_SHARE:.0%} dead rows"
    )


def access_outcomes(lines: Iterable[bytes]) -> dict[str, int]:
    """How many ``/v1/`` requests of an access log had each ``cache=`` outcome.

    Every log line is a JSON object (``contacts_http.gunicorn_hooks``); an access line's
    ``event`` is ``ACCESS_LOG_FORMAT``, which ends in ``cache=<X-Cache or ->``. Lines that are
    not JSON, not of the ``gunicorn.access`` logger or not of an API path (``/readyz``) are
    not counted; an access line without a ``cache=`` field counts as ``"unparsed"``."""
    counts: dict[str, int] = {}
    for raw in lines:
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("logger") != "gunicorn.access":
            continue
        message = str(entry.get("event", ""))
        parts = message.split()
        if len(parts) < 2 or not parts[1].startswith("/v1/"):
            continue
        found = _CACHE_FIELD.search(message)
        outcome = found.group(1) if found else "unparsed"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def check_all_misses(counts: dict[str, int], requests: int) -> str | None:
    """Why a cache-miss repetition is not one (``None`` when it is): every request of wrk's
    ``requests`` must appear in the access log as ``cache=miss``."""
    others = {k: v for k, v in counts.items() if k != "miss"}
    if others:
        return f"{sum(others.values())} of the requests were not misses: {others}"
    if counts.get("miss", 0) < requests:
        return f"{requests} requests sent but {counts.get('miss', 0)} cache=miss access lines"
    return None


def _explain(cur: Any, compiled: Any) -> dict[str, Any]:
    """``_plan_summary`` of ``EXPLAIN (ANALYZE, BUFFERS)`` of a compiled statement."""
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + str(compiled), compiled.params)
    return _plan_summary([r[0] for r in cur.fetchall()])


def _plan_summary(lines: list[str]) -> dict[str, Any]:
    """What ``Bench.explain`` keeps of an ``EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)``: whether
    every read is an index scan, the rows index scans threw away, the time, the plan."""
    plan = "\n".join(lines)
    removed = [int(line.split(":")[1]) for line in lines if "Rows Removed by Filter" in line]
    return {
        "index_scans_only": "Seq Scan" not in plan
        and any(s in plan for s in ("Index Scan", "Index Only Scan", "Bitmap Index")),
        "rows_removed_by_filter": sum(removed),
        "execution_ms": float(lines[-1].split(":")[1].split()[0]),
        "plan": lines,
    }


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive and self shares of the functions in a py-spy raw (collapsed) profile."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0]
            for f in stack_text.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def shares(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / total, 1)) for name, n in ranked]

    return {"samples": total, "inclusive_pct": shares(inclusive), "self_pct": shares(own)}


def _meets(goal: str, value: float) -> bool:
    op, threshold = goal.split()[:2]
    return value >= float(threshold) if op == ">=" else value <= float(threshold)


def judge(bench: Bench, fig: Figure) -> dict[str, Any]:
    """Value, ratio to the reference (when there is one), multiple of the peer (the DRF
    ``ModelViewSet``, when there is one) and whether the goals are met.

    A goal ``>= r`` and a goal ending in ``x`` (``<= 1.5 x``) are on the ratio to the
    reference; any other ``<= v`` is on the value itself (in the figure's unit). A peer goal
    (``>= 4``) is on the multiple of the peer."""
    entry: dict[str, Any] = {"goal": fig.goal, "value": fig.median, "unit": fig.unit}
    ref = bench.figures.get(fig.reference or "")
    if ref is not None and ref.median and fig.median is not None:
        entry["reference"] = fig.reference
        entry["reference_value"] = ref.median
        entry["ratio"] = fig.median / ref.median
    if fig.goal and fig.median is not None:
        on_ratio = fig.goal.startswith(">=") or fig.goal.endswith(" x")
        entry["met"] = _meets(fig.goal, entry.get("ratio", 0.0) if on_ratio else fig.median)
    peer = bench.figures.get(fig.peer or "")
    if peer is not None and peer.median and fig.median is not None:
        entry["peer"] = fig.peer
        entry["peer_value"] = peer.median
        entry["peer_multiple"] = fig.median / peer.median
        if fig.peer_goal:
            entry["peer_goal"] = fig.peer_goal
            entry["peer_met"] = _meets(fig.peer_goal, entry["peer_multiple"])
    return entry


def table(bench: Bench) -> str:
    """The results as a fixed-width text table: ``ratio`` to the same-run reference, ``x DRF``
    the multiple of the DRF peer's GET rate."""
    lines = [
        f"{'figure':<74} {'median':>8} {'min–max':>17}  {'unit':<8} {'ratio':>5} {'x DRF':>5}"
        "  goal",
        "-" * 150,
    ]
    for fig in bench.figures.values():
        if not fig.samples or fig.median is None:
            continue
        verdict = judge(bench, fig)
        ratio = f"{verdict['ratio']:.2f}" if "ratio" in verdict else ""
        multiple = f"{verdict['peer_multiple']:.2f}" if "peer_multiple" in verdict else ""
        goals_text = []
        if fig.goal:
            op, threshold = fig.goal.split()[:2]
            on_ratio = op == ">=" or fig.goal.endswith(" x")
            text = f"{op} {threshold} x ref" if on_ratio else f"{op} {threshold} {fig.unit}"
            goals_text.append(text + ("  met" if verdict["met"] else "  NOT MET"))
        if "peer_met" in verdict:
            goals_text.append(
                f"{fig.peer_goal} x DRF" + ("  met" if verdict["peer_met"] else "  NOT MET")
            )
        goal = "; ".join(goals_text)
        span = f"{min(fig.samples):.1f}–{max(fig.samples):.1f}"
        lines.append(
            f"{fig.title[:74]:<74} {fig.median:>8.1f} {span:>17}  {fig.unit:<8} {ratio:>5}"
            f" {multiple:>5}  {goal}"
        )
        if fig.reference and not goal:
            lines[-1] += f"  (ref: {bench.figures[fig.reference].title[:40]})"
    return "\n".join(lines)


def goals(bench: Bench) -> dict[str, Any]:
    """``judge`` of every figure that has a goal."""
    return {
        key: judge(bench, fig) for key, fig in bench.figures.items() if fig.goal and fig.samples
    }


def capacity(bench: Bench) -> dict[str, float]:
    """Throughput per CPU-second of the service's own processes (median over repetitions):
    what one pod can do at a limit of one CPU when the service is CPU-bound."""
    out = {}
    for key, label, field_name in (
        ("query_hit_rps", "query API cache hits per CPU-second", "requests_per_cpu_s"),
        ("query_miss_rps", "query API cache misses per CPU-second", "requests_per_cpu_s"),
        ("command_post_rps", "command API POSTs per CPU-second", "requests_per_cpu_s"),
        ("worker_events_rps", "worker events per CPU-second", "events_per_cpu_s"),
    ):
        fig = bench.figures.get(key)
        values = [d[field_name] for d in fig.details if field_name in d] if fig else []
        if values:
            out[label] = statistics.median(values)
    return out


def where_cpu_went(bench: Bench) -> dict[str, dict[str, Any]]:
    """Per figure with ``cpuacct`` repetitions: the unit counted (``per``: req, msg, event,
    row, write) and the median over repetitions of the microseconds of CPU per unit of each
    component (``cpuacct.median_us_per``)."""
    out = {}
    for key, fig in bench.figures.items():
        accounts = [d["cpu"] for d in fig.details if "cpu" in d]
        if accounts:
            out[key] = {"per": accounts[0]["per"], "us_per": cpuacct.median_us_per(accounts)}
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="contacts loaded for the scale figures"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    parser.add_argument(
        "--seconds", type=int, default=5, help="length of one HTTP/SQS repetition (s)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for GET by id")
    parser.add_argument(
        "--miss-ids",
        type=int,
        default=16_000,
        help="distinct ids per cache-miss (and protocol floor) repetition",
    )
    parser.add_argument(
        "--list-connections", type=int, default=4, help="wrk connections for list/search"
    )
    parser.add_argument(
        "--list-delay-ms",
        type=float,
        default=40.0,
        help="mean pause per list/search connection (ms)",
    )
    parser.add_argument(
        "--redis-requests", type=int, default=100_000, help="GETs per redis-benchmark run"
    )
    parser.add_argument(
        "--post-connections", type=int, default=8, help="POST connections = SendMessage threads"
    )
    parser.add_argument(
        "--drain-events", type=int, default=40_000, help="events pre-filled for the drains"
    )
    parser.add_argument(
        "--worker-window", type=int, default=12, help="seconds per worker-rate window"
    )
    parser.add_argument(
        "--fresh-writes", type=int, default=200, help="single writes per idle-freshness repetition"
    )
    parser.add_argument(
        "--load-seconds", type=int, default=10, help="length of one loaded-freshness repetition (s)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also py-spy the query API, the worker and an import (extra, uncounted runs)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the bench's worker, e.g. SQS_POLLING_INTERVAL_S=0.01",
    )
    parser.add_argument(
        "--worker-only", action="store_true", help="of the write figures, only the worker drain"
    )
    parser.add_argument(
        "--import-cards",
        type=int,
        default=address_book.DEFAULT_RECORDS,
        help="cards of the import figures' vCard file",
    )
    parser.add_argument("--import-reps", type=int, default=1, help="repetitions of the import")
    parser.add_argument("--skip-import", action="store_true", help="no import figures")
    parser.add_argument(
        "--import-only",
        action="store_true",
        help="only the import figures (command API, query API and worker only)",
    )
    parser.add_argument(
        "--freshness-only",
        action="store_true",
        help="only the idle freshness figures and their segments (command API, query API, worker)",
    )
    parser.add_argument(
        "--post-only",
        action="store_true",
        help="of the write figures, only POST accepted vs raw SendMessage",
    )
    parser.add_argument(
        "--miss-only",
        action="store_true",
        help="only the ceiling, cache hit and cache miss figures (query API and ceiling app only;"
        " with --profile, py-spy --gil of the miss load only)",
    )
    parser.add_argument("--load-only", action="store_true", help="load the data set and stop")
    parser.add_argument("--skip-writes", action="store_true", help="read figures only (debugging)")
    parser.add_argument("--skip-reads", action="store_true", help="write figures only (debugging)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    stack.RUN_DIR.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    load_before = stack.load_average()
    log(
        "make bench: load average {:.2f} {:.2f} {:.2f} on {} CPUs".format(
            *load_before, os.cpu_count()
        )
    )
    try:
        bench.prepare()
        if args.load_only:
            return 0
        if args.miss_only:
            bench.start_services(only=("ceiling", "query-api", "floor"))
            bench.measure_reads()
            if args.profile:
                bench.profile_misses()
        elif args.import_only or args.freshness_only:
            bench.start_services(only=("query-api", "command-api"))
            bench.start_worker()
            if args.freshness_only:
                bench.measure_freshness_idle()
            if args.import_only:
                bench.measure_import()
        else:
            bench.start_services()
            if not (args.skip_reads or args.post_only):
                bench.measure_reads()
            if not args.skip_writes:
                bench.measure_writes()
            if not (args.skip_writes or args.worker_only or args.post_only or args.skip_import):
                bench.measure_import()
        if args.profile and not (args.import_only or args.freshness_only or args.miss_only):
            bench.profile_reads()
        bench.rss()
    finally:
        bench.stop_all()
        with contextlib.suppress(Exception):
            bench.clean_writes()
        shutil.rmtree(bench.tmp, ignore_errors=True)
    load_after = stack.load_average()
    result = {
        "started": started.isoformat(),
        "seconds": round(time.perf_counter() - t0, 1),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "settings": {k: v for k, v in vars(args).items()},
        "service_settings": {
            k: bench.env.get(k)
            for k in (
                "GUNICORN_WORKERS",
                "QUERY_API_THREADS",
                "COMMAND_API_WORKERS",
                "COMMAND_API_THREADS",
                "WORKER_CONCURRENCY",
                "WORKER_PREFETCH_MULTIPLIER",
            )
        },
        # up.sh starts the query API with GUNICORN_WORKERS, as stack.gunicorn_query_api does.
        "query_api_workers": bench.env.get(
            "QUERY_API_WORKERS", bench.env.get("GUNICORN_WORKERS", "2")
        ),
        "figures": {k: f.as_dict() for k, f in bench.figures.items()},
        "goals": goals(bench),
        "capacity_per_cpu_s": capacity(bench),
        "where_cpu_went": where_cpu_went(bench),
        "notes": bench.notes,
        "invalid": bench.invalid,
    }
    for key in ("drf_get_rps", "drf_list_rps"):  # the peer's figures, at the top (issue 13)
        if key in bench.figures:
            result[key] = bench.figures[key].median
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{bench.stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(table(bench))
    print()
    print(
        cpuacct.table(
            (key, entry["per"], entry["us_per"]) for key, entry in result["where_cpu_went"].items()
        )
    )
    shown = out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out
    print(
        f"\nload average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min), "
        f"{os.cpu_count()} CPUs; {result['seconds']:.0f} s; written to {shown}"
    )
    for process in (
        result["figures"].get("rss_max_mb", {}).get("details", [{}])[0].get("processes", [])
    ):
        print(f"RSS {process['service']:<12} pid {process['pid']:>7} {process['rss_mb']:6.1f} MiB")
    for name, value in capacity(bench).items():
        print(f"capacity: {name}: {value:.0f}")
    for name, plan in bench.notes.get("explain", {}).items():
        print(
            f"EXPLAIN {name}: "
            + ("index scans only" if plan["index_scans_only"] else "NOT only index scans")
            + f", {plan['rows_removed_by_filter']:,} rows removed by filter,"
            f" {plan['execution_ms']:.1f} ms"
        )
    if "explain_index_scans_only" in bench.notes:
        verdict = (
            "all index scans" if bench.notes["explain_index_scans_only"] else "NOT ALL index scans"
        )
        print(f"EXPLAIN: {verdict} ({len(bench.notes['explain'])} plans)")
    if "dead_rows_before_figures" in bench.notes:
        print(vacuumed_state(bench.notes["dead_rows_before_figures"]))
    for problem in bench.invalid:
        print(f"INVALID RUN: {problem}")
    return 1 if bench.invalid else 0


if __name__ == "__main__":
    sys.exit(main())
