"""The one Redis client factory of every service: one behaviour for timeouts, retries and
health checks (docs/architecture.md, "Redis").

- Every call is bounded: ``redis_connect_timeout_s`` to connect, ``redis_socket_timeout_s`` per
  reply, so a Redis that drops packets or is paused fails the call instead of hanging it (case
  C18). redis-py's own default would wait without bound and retry a failed command.
- No retries inside the client: every caller already has its own (Celery redelivers a task, an
  API answers 503 with Retry-After or bypasses the cache behind its circuit breaker), and a
  hidden retry would multiply the time bound.
- A connection idle for ``HEALTH_CHECK_INTERVAL_S`` is checked with a PING before reuse, so a
  connection a load balancer or a failover cut is replaced instead of failing a command.
- Replies are bytes (``decode_responses`` off); adapters decode what they read.
- The pool connects lazily and notices a fork (it compares the process id), so a client built
  before gunicorn or Celery forks opens fresh connections in each child (case C21).
"""

from __future__ import annotations

from typing import Final

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from contacts_infra.settings import RedisSettings

#: Seconds a pooled connection may sit idle before it is PINGed on its next use.
HEALTH_CHECK_INTERVAL_S: Final = 30


def create_redis(settings: RedisSettings, *, client_name: str) -> redis.Redis:
    """A client for ``settings.redis_url`` with the behaviour above; ``client_name`` (the
    service, e.g. ``"query-api"``) shows in Redis's ``CLIENT LIST``. Connects to nothing yet."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        client_name=client_name,
    )
