"""Freshness at idle: time from POST /v1/contacts to its operation reaching ``applied``.

Case C16 and issue 2's closing figure. Runs against a running stack (``make up``):

    .venv/bin/python bench/freshness.py --count 50 [--command-url ...] [--query-url ...]

It sends the API key ``make up`` printed (``--api-key``; default: ``$CONTACTS_API_KEY``, else the
key ``make up`` keeps in ``.run/dev-api-key``).

Prints p50/p95/p99 in ms over ``count`` single writes separated by random pauses of 0–2 s
(``--max-pause``), so each write finds the worker idle and long-polling.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from pathlib import Path

import requests

DEV_KEY_FILE = Path(__file__).resolve().parents[1] / ".run" / "dev-api-key"


def default_api_key() -> str | None:
    """``$CONTACTS_API_KEY``, else the key in ``.run/dev-api-key``, else ``None``."""
    if os.environ.get("CONTACTS_API_KEY"):
        return os.environ["CONTACTS_API_KEY"]
    return DEV_KEY_FILE.read_text().strip() if DEV_KEY_FILE.is_file() else None


def one_write(session: requests.Session, command_url: str, query_url: str) -> float:
    """Return the POST → applied latency in ms. Polls the operation every 2 ms."""
    started = time.perf_counter()
    answer = session.post(
        f"{command_url}/v1/contacts",
        json={"first_name": "Bench", "email": f"bench-{uuid.uuid4().hex}@example.com"},
        timeout=10,
    )
    answer.raise_for_status()
    operation_url = f"{query_url}/v1/operations/{answer.json()['operation_id']}"
    while True:
        status = session.get(operation_url, timeout=10)
        if status.status_code == 200 and status.json()["status"] != "pending":
            return (time.perf_counter() - started) * 1000
        if time.perf_counter() - started > 30:
            raise TimeoutError(operation_url)
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--max-pause", type=float, default=2.0)
    parser.add_argument("--command-url", default="http://127.0.0.1:8001")
    parser.add_argument("--query-url", default="http://127.0.0.1:8002")
    parser.add_argument("--api-key", default=default_api_key())
    args = parser.parse_args()
    session = requests.Session()
    if args.api_key:
        session.headers["Authorization"] = f"Bearer {args.api_key}"
    samples = []
    for _ in range(args.count):
        time.sleep(random.uniform(0, args.max_pause))
        samples.append(one_write(session, args.command_url, args.query_url))
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    print(f"POST -> applied over {len(samples)} writes (ms)")
    p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    print(f"  p50 {p50:7.1f}   p95 {p95:7.1f}   p99 {p99:7.1f}   max {max(samples):7.1f}")


if __name__ == "__main__":
    main()
