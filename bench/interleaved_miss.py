"""Interleaved A/B of the cache miss under gunicorn: two checkouts served side by side.

``.venv/bin/python bench/interleaved_miss.py A_ROOT B_ROOT [WINDOWS] [SECONDS]`` (run it under
the bench lock, after ``source deploy/local/env.sh``): starts the query API of each checkout
(its own ``.venv``, the config module and settings ``make bench`` uses, a Redis key prefix of
its own) against ``contacts_bench``, then points wrk (32 connections, every request a distinct
id, so every read is a miss) at A and B in turn, ``SECONDS`` (default 3) per window,
``WINDOWS`` (default 10) windows each, in the order A B B A A B ... so both see the same
background load. Per window it prints req/s, the CPU of the server's processes per request
(µs) and the voluntary and involuntary context switches of all their threads per request,
then the medians. A `make bench` repetition per side takes a minute, in which other users of a
shared machine come and go; this compares within seconds. Deletes its keys at the end. Not a
test; see bench/README.md, "The cache miss, fourth pass".
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import dataset  # bench/ (the script's directory)
import psycopg2
import redis
import stack

CONNECTIONS = 32
#: Distinct ids per window: more than a window can serve.
IDS_PER_WINDOW = 4500
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "paths.lua"


def context_switches(pids: list[int]) -> tuple[int, int]:
    """Voluntary and involuntary context switches so far of every thread of ``pids``."""
    voluntary = involuntary = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                lines = (task / "status").read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                if line.startswith("voluntary_ctxt_switches"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    involuntary += int(line.split()[1])
    return voluntary, involuntary


def start(name: str, root: Path, env: dict[str, str]) -> tuple[stack.Service, str]:
    """The query API of the checkout ``root`` as ``make bench`` starts it, on a free port."""
    port = stack.free_port()
    server_env = {
        **env,
        "QUERY_API_BIND": f"127.0.0.1:{port}",
        "QUERY_API_WORKERS": env.get("QUERY_API_WORKERS", env.get("GUNICORN_WORKERS", "2")),
        "PYTHONPATH": str(root / "bench"),
    }
    argv = [
        str(root / ".venv" / "bin" / "gunicorn"),
        "-c",
        "python:query_api.entrypoints.gunicorn_conf",
        "query_api.entrypoints.app:create_app()",
    ]
    url = f"http://127.0.0.1:{port}"
    return stack.Service(f"interleaved-{name}", argv, server_env, ready_url=f"{url}/readyz"), url


def window(service: stack.Service, url: str, ids: list[str], seconds: int) -> dict[str, float]:
    """One wrk window over ``ids`` (each requested once) and what it cost ``service``."""
    paths = stack.RUN_DIR / f"{service.name}-paths.txt"
    paths.write_text("".join(f"/v1/contacts/{i}\n" for i in ids))
    pids = service.pids()
    cpu, (voluntary, involuntary) = stack.cpu_seconds(pids), context_switches(pids)
    argv = ["wrk", "-H", stack.AUTH_HEADER, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s"]
    argv += ["--timeout", "5s", "-s", str(WRK_SCRIPT), url, "--", str(paths), "0", "1", "2"]
    out = subprocess.run(
        argv,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    requests = max(int(result["requests"]), 1)
    voluntary_after, involuntary_after = context_switches(pids)
    return {
        "rps": requests / (result["duration_us"] / 1e6),
        "cpu_us": 1e6 * (stack.cpu_seconds(pids) - cpu) / requests,
        "voluntary": (voluntary_after - voluntary) / requests,
        "involuntary": (involuntary_after - involuntary) / requests,
        "load": os.getloadavg()[0],
    }


def sample_ids(dsn: str, count: int) -> list[str]:
    """``count`` live contacts of the loaded large workspace, shuffled."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id::text FROM contacts TABLESAMPLE SYSTEM (25) WHERE workspace = %s"
            " AND alive AND created_at < %s",
            (dataset.LARGE_WORKSPACE, dataset.LOADED_BEFORE),
        )
        ids = [row[0] for row in cur.fetchall()]
    if len(ids) < count:
        raise SystemExit(f"only {len(ids)} ids sampled, {count} needed: fewer windows")
    random.Random(4).shuffle(ids)
    return ids[:count]


def main(roots: dict[str, Path], windows: int, seconds: int) -> None:
    env = stack.bench_environment(os.environ)
    prefixes = {name: f"interleaved-{name}-{uuid.uuid4().hex[:6]}:" for name in roots}
    services = {
        name: start(name, root, {**env, "REDIS_PREFIX": prefixes[name]})
        for name, root in roots.items()
    }
    try:
        for service, _ in services.values():
            service.start()
        for service, _ in services.values():
            service.wait_ready()
        ids = iter(
            sample_ids(stack.libpq_url(env["DATABASE_URL"]), (2 * windows + 2) * IDS_PER_WINDOW)
        )
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in roots}
        for service, url in services.values():  # warm: pools, prepared statements
            window(service, url, [next(ids) for _ in range(IDS_PER_WINDOW)], 1)
        for w in range(windows):
            for name in ("A", "B") if w % 2 == 0 else ("B", "A"):
                service, url = services[name]
                row = window(service, url, [next(ids) for _ in range(IDS_PER_WINDOW)], seconds)
                rows[name].append(row)
                print(name, " ".join(f"{k}={v:.1f}" for k, v in row.items()), flush=True)
        for name, named in rows.items():
            medians = {k: statistics.median(r[k] for r in named) for k in named[0]}
            print(name, "median", " ".join(f"{k}={v:.1f}" for k, v in medians.items()))
    finally:
        for service, _ in services.values():
            service.stop()
        client = redis.Redis.from_url(env["REDIS_URL"])
        for prefix in prefixes.values():
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)


if __name__ == "__main__":
    ARGS = sys.argv[1:]
    main(
        {"A": Path(ARGS[0]).resolve(), "B": Path(ARGS[1]).resolve()},
        int(ARGS[2]) if len(ARGS) > 2 else 10,
        int(ARGS[3]) if len(ARGS) > 3 else 3,
    )
