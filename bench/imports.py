"""How long ``POST /v1/imports`` takes for the largest import allowed (issue 3, item 3), and
what a batch (``POST /v1/contacts/batch``, SQS ``SendMessageBatch``) saves over single writes.

Not a test: prints figures. Runs the command API under gunicorn exactly as ``make up`` does
(``tests/support/processes.command_api``: the gunicorn config module, ``--timeout 30``) against
an SQS-compatible server (``TEST_SQS_ENDPOINT_URL`` when it answers, else a LocalStack started
here on a free port) and the local Redis, on a FIFO queue and a Redis prefix of its own, all
deleted afterwards. It posts a synthetic vCard file of ``--records`` cards (default 10,000, the
``IMPORT_MAX_RECORDS`` default) padded to about ``--bytes`` (default just under 10 MB, the
``IMPORT_MAX_BYTES`` default), then the same file again with the same ``Idempotency-Key`` (a
retry: every event is sent again and dropped by SQS as a duplicate), and prints each answer's
status and wall-clock time, and the queue's depth. Then it creates ``--writes`` contacts
(default 1,000) one ``POST /v1/contacts`` at a time and again 100 per ``POST
/v1/contacts/batch``, ``--reps`` times, and prints the median milliseconds per contact of each
and their ratio (one client, sequential: the latency a syncing integrator sees).

    .venv/bin/python bench/imports.py [--records N] [--bytes B] [--reps R] [--writes W]

``--timeout`` sets gunicorn's worker timeout (default 30, as ``make up``, the image and the
chart). The command API runs gthread workers, whose main thread reports to the arbiter about
every second while requests run in other threads: the timeout bounds a stuck worker process,
not a long request. Run with ``--timeout 5`` to see a 10-second import still answer 202.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from address_book import address_book

from support.auth import AUTH_ENV, AUTH_HEADERS
from support.processes import Service, command_api, free_port, http_ok, sqs_server
from support.resources import delete_prefix, isolated_queues, sqs_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def compare_batches(base: str, writes: int, reps: int) -> None:
    """Print the median ms per contact created singly and in batches of 100, and the ratio."""
    session = requests.Session()
    session.headers.update(AUTH_HEADERS)
    single: list[float] = []
    batched: list[float] = []
    for _rep in range(reps):
        began = time.perf_counter()
        for number in range(writes):
            answer = session.post(
                f"{base}/v1/contacts", json={"first_name": f"Single{number}"}, timeout=30
            )
            answer.raise_for_status()
        single.append((time.perf_counter() - began) * 1000 / writes)
        began = time.perf_counter()
        for start in range(0, writes, 100):
            operations: list[dict[str, Any]] = [
                {"op": "create", "data": {"first_name": f"Batch{number}"}}
                for number in range(start, min(start + 100, writes))
            ]
            answer = session.post(
                f"{base}/v1/contacts/batch", json={"operations": operations}, timeout=60
            )
            assert answer.status_code == 202, answer.text
        batched.append((time.perf_counter() - began) * 1000 / writes)
    one, many = statistics.median(single), statistics.median(batched)
    print(
        f"{writes} creates x {reps}: single {one:.2f} ms/contact, batch of 100 "
        f"{many:.2f} ms/contact (medians), ratio {one / many:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--bytes", type=int, default=10_485_760)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--writes", type=int, default=1_000)
    parser.add_argument(
        "--timeout",
        type=int,
        default=30,
        help="gunicorn --timeout (s); below the import's time it shows whether it bounds it",
    )
    args = parser.parse_args()

    started: list[Service] = []
    endpoint = os.environ.get("TEST_SQS_ENDPOINT_URL", "")
    try:
        if not endpoint or not http_ok(f"{endpoint}/_localstack/health"):
            port = free_port()
            server = sqs_server(port, tempfile.mkdtemp(prefix="localstack-")).start()
            started.append(server)
            endpoint = f"http://127.0.0.1:{port}"
            server.wait_until(lambda: http_ok(f"{endpoint}/_localstack/health"), 90, "SQS")
        run = uuid.uuid4().hex[:8]
        prefix = f"bench-import-{run}:"
        sqs = sqs_client(endpoint)
        with isolated_queues(sqs, f"bench{run}imp") as urls:
            env = {
                **AUTH_ENV,
                "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": prefix,
                "SQS_ENDPOINT_URL": endpoint,
                "SQS_QUEUE_NAME": urls.main.rsplit("/", 1)[1],
                "SQS_QUEUE_URL": urls.main,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "RATE_LIMIT_ENABLED": "false",
            }
            api_port = free_port()
            api = command_api(api_port, env, workers=1, name="bench-command-api")
            api.argv[api.argv.index("--timeout") + 1] = str(args.timeout)
            api.start()
            started.append(api)
            base = f"http://127.0.0.1:{api_port}"
            api.wait_until(lambda: http_ok(f"{base}/readyz", 3.0), 60, "readiness")
            body = address_book(args.records, args.bytes)
            size = f"{args.records} cards, {len(body):,} bytes"
            print(f"file: {size}; gunicorn --timeout {args.timeout}")
            for rep in range(args.reps):
                key = f"bench-{run}-{rep}"
                for attempt in ("first", "retry"):
                    began = time.perf_counter()
                    response = requests.post(
                        f"{base}/v1/imports",
                        data=body,
                        headers={
                            **AUTH_HEADERS,
                            "Content-Type": "text/vcard",
                            "Idempotency-Key": key,
                        },
                        timeout=120,
                    )
                    elapsed = time.perf_counter() - began
                    print(
                        f"rep {rep} {attempt}: {response.status_code} in {elapsed:.2f} s "
                        f"{response.json()}"
                    )
            depth = sqs.get_queue_attributes(
                QueueUrl=urls.main, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            print(f"queue depth afterwards: {depth} messages")
            compare_batches(base, args.writes, args.reps)
            client = redis.Redis.from_url(REDIS_URL)
            delete_prefix(client, prefix)
    finally:
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    main()
