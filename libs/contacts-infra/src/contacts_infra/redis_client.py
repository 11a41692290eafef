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
restarts it. Later, a cluster that cannot be reached (redis-py raises
``RedisClusterException`` when re-reading the slot map fails, or ``SlotNotCoveredError`` when a
shard is lost) is a ``redis.ConnectionError``, like a single server that cannot be reached
(``ClusterClient``), so every caller's outage handling (the query API's breaker, the command
API's 503, the worker's redelivery) holds; such a call tries each known node once, so it is
bounded by the number of nodes times the timeouts. It is typed as ``redis.Redis`` because it
has the same command methods with the same signatures, so every adapter takes either; what
differs, and what the adapters therefore never use, is: ``connection_pool`` (one pool per node;
the rate limiter builds its own client, ``limits_storage``), commands or scripts whose keys span
two hash slots (every multi-key script takes the keys of one contact, which share a hash tag,
``contacts_infra.redis_keys``), and ``MULTI`` across slots. ``scan_iter`` walks every node.
The services' ``test_redis_cluster.py`` tests run their adapters on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException, SlotNotCoveredError
from redis.retry import Retry

from contacts_infra.settings import RedisSettings

#: Seconds a pooled connection may sit idle before it is PINGed on its next use.
HEALTH_CHECK_INTERVAL_S: Final = 30


class ClusterClient(RedisCluster):
    """``RedisCluster`` whose failures to reach the cluster are ``redis.ConnectionError``
    (module doc), in commands, scripts and pipelines alike."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _unreachable_is_connection_error():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        # The same pipeline, whose execute() maps the errors too (redis-py builds it inline).
        pipe.__class__ = _ClusterPipeline
        return pipe


class _ClusterPipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _unreachable_is_connection_error():
            return super().execute(raise_on_error)


@contextmanager
def _unreachable_is_connection_error() -> Iterator[None]:
    """Re-raise a cluster that cannot be reached as ``redis.ConnectionError``; any other
    ``RedisClusterException`` (a command the client cannot route: a bug) passes unchanged."""
    try:
        yield
    except RedisClusterException as exc:
        cause = exc.__cause__
        if isinstance(exc, SlotNotCoveredError) or isinstance(cause, (redis.RedisError, OSError)):
            raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc
        raise


def create_redis(settings: RedisSettings, *, client_name: str) -> redis.Redis:
    """A client for ``settings.redis_url`` with the behaviour above; ``client_name`` (the
    service, e.g. ``"query-api"``) shows in Redis's ``CLIENT LIST``. A single-server client
    connects to nothing yet; a cluster client reads the slot map now (module doc) and raises
    ``redis.exceptions.RedisClusterException`` (not a ``RedisError``) when no node answers
    within the connect timeout."""
    options = _client_options(settings, client_name)
    if settings.redis_cluster_mode:
        return cast(redis.Redis, ClusterClient.from_url(settings.redis_url, **options))
    return redis.Redis.from_url(settings.redis_url, **options)


def limits_storage(settings: RedisSettings, *, client_name: str) -> tuple[str, dict[str, Any]]:
    """The storage URI and options of the ``limits`` library (the rate limiter's counters) for
    ``settings``, with the behaviour above: ``("redis://", {"connection_pool": ...})``, the pool
    of a ``create_redis`` client, for one server; ``("redis+cluster://<node>", {...})`` for a
    cluster, whose client ``limits`` builds itself (a cluster client has no single pool to
    share) from the same options; there a ``rediss://`` URL becomes ``ssl=True`` and the URL's
    query-string options are not carried over."""
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
    """Keyword arguments of the client class of ``settings`` for the behaviour in the module
    doc. The cluster client's ``retry`` is its own (0: no retry); it gives its nodes'
    connections no retries of theirs, and takes neither ``retry_on_timeout`` (deprecated there)
    nor ``health_check_interval``."""
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "client_name": client_name,
    }
    if not settings.redis_cluster_mode:
        options |= {"retry_on_timeout": False, "health_check_interval": HEALTH_CHECK_INTERVAL_S}
    return options
