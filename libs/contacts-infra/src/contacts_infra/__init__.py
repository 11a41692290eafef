"""Infrastructure shared by the three contacts services (docs/architecture.md, "Layout").

- ``settings``: typed settings read once from the environment with pydantic-settings, and the
  groups of settings more than one service reads (Redis, the SQS connection).
- ``redis_client``: the one Redis client factory (bounded calls, no retries, health checks).
- ``redis_keys``: the Redis key layout and the Lua scripts of the read cache.
- ``operation_store``: operation statuses in Redis, written by the command API and the worker.
- ``messaging``: the SQS/Celery conventions both ends of the queue must agree on.
"""
