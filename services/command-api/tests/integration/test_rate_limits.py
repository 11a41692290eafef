"""The write routes count their rate limits in one Redis round trip before their view
(``contacts_http.rate_limits.InlineRateLimits``, ``COUNTED_FIRST``) and answer exactly as
flask-limiter does: ``RateLimit-*`` headers, a 429 problem with ``Retry-After``, a workspace
counter shared by every route of this API (not the query API's: its own key prefix), and
per-process counting while Redis is down."""

from __future__ import annotations

import socket
import threading
import uuid
from typing import Any

import pytest
import redis

from command_api.entrypoints.app import create_app
from contacts_http.rate_limits import RateLimitSettings
from support.auth import authorized

ROSA = {"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}


def _limited(settings: Any, **limits: Any) -> Any:
    # A prefix of this test's own: the counters start at zero in the run's real Redis.
    return settings.model_copy(
        update={
            "rate_limits": RateLimitSettings(**limits),
            "redis_prefix": f"{settings.redis_prefix}{uuid.uuid4().hex[:8]}:",
        }
    )


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_post_counts_down_then_answers_429_with_retry_after_and_queues_nothing(
    command_settings, drain, redis_client
) -> None:
    settings = _limited(command_settings, default="3/minute", workspace="")
    client = authorized(create_app(settings)).test_client()

    answers = [client.post("/v1/contacts", json=ROSA) for _ in range(3)]
    refused = client.post("/v1/contacts", json=ROSA)

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
    assert all(0 < int(a.headers["RateLimit-Reset"]) <= 60 for a in answers)
    assert all("Retry-After" not in a.headers for a in answers)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert "this caller to this route" in refused.get_json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert len(drain()) == 3
    prefix = settings.redis_prefix
    assert redis_client.keys(f"{prefix}ratelimit:command-api:*contacts.Contacts*")


def test_the_counting_is_one_redis_command(command_settings, redis_client) -> None:
    settings = _limited(command_settings, default="100/minute;5/second", workspace="1000/hour")
    client = authorized(create_app(settings)).test_client()
    prefix = f"{settings.redis_prefix}ratelimit:"
    client.post("/v1/contacts", json=ROSA)  # scripts loaded, connections open
    seen: list[str] = []
    done = f"done-{uuid.uuid4().hex}"
    monitor_client = redis.Redis.from_url(settings.redis_url)
    ready = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if done in command["command"]:
                    return
                if prefix in command["command"] and command.get("client_type") != "lua":
                    seen.append(command["command"].split()[0])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    assert client.post("/v1/contacts", json=ROSA).status_code == 202
    redis_client.echo(done)
    watcher.join(10)

    assert [c.upper() for c in seen] == ["EVALSHA"]


def test_every_write_route_shares_the_workspace_counter_not_the_query_apis(
    command_settings, redis_client
) -> None:
    settings = _limited(command_settings, default="100/minute", workspace="3/minute")
    client = authorized(create_app(settings)).test_client()
    contact = f"/v1/contacts/{uuid.uuid4()}"

    assert client.post("/v1/contacts", json=ROSA).status_code == 202
    assert client.put(contact, json=ROSA).status_code == 202
    assert client.delete(contact).status_code == 202
    refused = client.patch(contact, json={"company": "Acme"})

    assert refused.status_code == 429
    assert "in this workspace" in refused.get_json()["detail"]
    assert client.post("/v1/contacts/upsert", json=ROSA).status_code == 429
    keys = redis_client.keys(f"{settings.redis_prefix}ratelimit:*workspace*")
    assert keys
    assert all(b":command-api:" in key for key in keys)


def test_an_invalid_body_counts_too(command_settings) -> None:
    settings = _limited(command_settings, default="1/minute", workspace="")
    client = authorized(create_app(settings)).test_client()

    assert client.post("/v1/contacts", json={"emails": "x"}).status_code == 400
    assert client.post("/v1/contacts", json=ROSA).status_code == 429


def test_with_redis_down_the_limit_holds_per_process_with_one_warning(
    command_settings, refused_port, caplog
) -> None:
    settings = _limited(command_settings, default="2/minute", workspace="").model_copy(
        update={"redis_url": f"redis://127.0.0.1:{refused_port}/0"}
    )
    client = authorized(create_app(settings)).test_client()

    first, second, third = (client.post("/v1/contacts", json=ROSA) for _ in range(3))

    # The event is queued (the pending status is best effort); the limit counts in memory.
    assert [first.status_code, second.status_code] == [202, 202]
    assert [first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]] == [
        "1",
        "0",
    ]
    assert third.status_code == 429
    assert "Retry-After" in third.headers
    warnings = [r for r in caplog.records if "Rate limit storage unreachable" in r.getMessage()]
    assert len(warnings) == 1
