"""The one Redis client factory of every service: one behaviour for timeouts, retries and
health checks (docs/architecture.md, "Redis"), for one Redis server or a Redis Cluster.

- Every call is bounded: ``redis_connect_timeout_s`` to connect, ``redis_socket_timeout_s`` per
  reply, so a Redis that drops packets or is paused fails the call instead of hanging it (case
  C18). redis-py's own default would wait without bound and retry a failed command.
- No retries inside the client: every caller already has its own (Celery redelivers a task, an
  API answers 503 with Retry-After or bypasses the cache behind its circuit breaker), and a
  hidden retry would multiply the time bound. A cluster client follows a ``MOVED`` or ``ASK``
  redirection (that is routing, not a retry) but retries no failed call.
- A connection idle for ``HEALTH_CHECK_INTERVAL_S`` is checked with a PING before reuse, so a
  connection a load balancer or a failover cut is replaced instead of failing a command. (Not
  in cluster mode: redis-py's cluster client does not pass that option to its nodes. There a
  cut connection fails one command, which its caller handles like any Redis error, and the
  client reconnects and re-reads the slot map on the next.)
- Replies are bytes (``decode_responses`` off); adapters decode what they read.
- The pool notices a fork (it compares the process id), so a client built before gunicorn or
  Celery forks opens fresh connections in each child (case C21).

Cluster mode (``REDIS_CLUSTER_MODE=true``; the rule is in ``settings.RedisSettings``): the
client is a ``redis.cluster.RedisCluster`` that routes each command to the primary of its key's
hash slot. Unlike the single-server client it reads the cluster's slot map (``CLUSTER SLOTS``)
when it is built, so it raises ``redis.exceptions.RedisClusterException`` (not a
``RedisError``) at start-up when no node answers: the process exits and its orchestrator
restarts it. It is typed as ``redis.Redis`` because it
has the same command methods with the same signatures, so every adapter takes either; what
differs, and what the adapters therefore never use, is: ``connection_pool`` (one pool per node;
the rate limiter builds its own client, ``limits_storage``), commands or scripts whose keys span
two hash slots (every multi-key script takes the keys of one contact, which share a hash tag,
``contacts_infra.redis_keys``), and ``MULTI`` across slots. ``scan_iter`` walks every node.
The services' ``test_redis_cluster.py`` tests run their adapters on a real cluster.
"""

from __future__ import annotations

from typing import Any, Final, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from contacts_infra.settings import RedisSettings

#: Seconds a pooled connection may sit idle before it is PINGed on its next use.
HEALTH_CHECK_INTERVAL_S: Final = 30


def create_redis(settings: RedisSettings, *, client_name: str) -> redis.Redis:
    """A client for ``settings.redis_url`` with the behaviour above; ``client_name`` (the
    service, e.g. ``"query-api"``) shows in Redis's ``CLIENT LIST``. A single-server client
    connects to nothing yet; a cluster client reads the slot map now (module doc) and raises
    ``redis.exceptions.RedisClusterException`` (not a ``RedisError``) when no node answers
    within the connect timeout."""
    options = _client_options(settings, client_name)
    if settings.redis_cluster_mode:
        return cast(redis.Redis, RedisCluster.from_url(settings.redis_url, **options))
    return redis.Redis.from_url(settings.redis_url, **options)


def limits_storage(settings: RedisSettings, *, client_name: str) -> tuple[str, dict[str, Any]]:
    """The storage URI and options of the ``limits`` library (the rate limiter's counters) for
    ``settings``, with the behaviour above: ``("redis://", {"connection_pool": ...})``, the pool
    of a ``create_redis`` client, for one server; ``("redis+cluster://<node>", {...})`` for a
    cluster, whose client ``limits`` builds itself (a cluster client has no single pool to
    share) from the same options."""
    options = _client_options(settings, client_name)
    if not settings.redis_cluster_mode:
        client = redis.Redis.from_url(settings.redis_url, **options)
        return "redis://", {"connection_pool": client.connection_pool}
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "rediss":
        options["ssl"] = True
    # The user, password, host and port of the node: everything else is in ``options``.
    return f"redis+cluster://{parts.netloc}", options


def _client_options(settings: RedisSettings, client_name: str) -> dict[str, Any]:
    """Keyword arguments of both client classes for the behaviour in the module doc."""
    return {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "client_name": client_name,
    }
