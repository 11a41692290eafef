"""Redis adapter of the worker: the version-guarded contact cache (operation statuses are
``contacts_infra.operation_store``), and after a commit the cache entries and the statuses in
one round trip (``RedisContactCache.put_all_then_record``)."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.cluster import RedisCluster

from contacts_domain import ContactState, OperationStatus
from contacts_domain.ports import ContactCache, OperationStore
from contacts_domain.resource import contact_resource, encode_resource
from contacts_infra.operation_store import RedisOperationStore
from contacts_infra.redis_keys import GUARDED_SET_LUA, contact_key


class RedisContactCache(ContactCache):
    """Writes ``{prefix}contact:{<workspace>/<id>}`` (the state's workspace) through
    ``redis_keys.GUARDED_SET_LUA``."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._guarded_set = client.register_script(GUARDED_SET_LUA)
        self._guarded_set_text = GUARDED_SET_LUA

    def put(self, state: ContactState) -> bool:
        """Raises ``redis.RedisError`` when Redis is unreachable (the caller retries)."""
        written = self._guarded_set(
            keys=[contact_key(self._prefix, state.workspace, state.contact_id)],
            args=self._args(state),
        )
        return bool(written)

    def put_all(self, states: Sequence[ContactState]) -> None:
        """``put`` every state in one round trip (a pipeline without MULTI); on a Redis
        Cluster, whose client refuses scripts in a pipeline, one call each (the states' keys
        are in different slots anyway). Raises ``redis.RedisError`` when Redis is
        unreachable."""
        if not states:
            return
        if isinstance(self._client, RedisCluster):
            for state in states:
                self.put(state)
            return
        calls = [
            (contact_key(self._prefix, state.workspace, state.contact_id), self._args(state))
            for state in states
        ]
        try:
            self._evalsha_all(calls)
        except redis.exceptions.NoScriptError:
            # Not loaded yet (first use, a restarted Redis): load it and send them again; the
            # writes are version-guarded, so a state written twice changes nothing.
            self._client.script_load(self._guarded_set.script)
            self._evalsha_all(calls)

    def put_all_then_record(
        self,
        states: Sequence[ContactState],
        outcomes: Sequence[tuple[str, OperationStatus]],
        operations: OperationStore,
    ) -> None:
        """The entries of ``states``, then the statuses ``outcomes``, in ONE round trip: a
        pipeline without MULTI whose commands Redis runs in order, so no status is visible
        before its entry (docs/architecture.md §5.6). Each entry goes by ``EVAL`` with the
        script's text, not ``EVALSHA``: a Redis that does not know the script (restarted,
        failed over, flushed) would answer NOSCRIPT to the entry and still run the status's
        ``SET`` after it. Only when ``operations`` writes through this client
        (``RedisOperationStore.shares``) and not on a Redis Cluster (whose client refuses
        scripts in a pipeline); otherwise ``put_all`` then ``record_all``. Raises
        ``redis.RedisError`` when Redis is unreachable or refuses a command (the entries and
        statuses before it may be written: every write is safe to repeat)."""
        shared = isinstance(operations, RedisOperationStore) and operations.shares(self._client)
        if not shared or isinstance(self._client, RedisCluster):
            super().put_all_then_record(states, outcomes, operations)
            return
        if not states and not outcomes:
            return
        assert isinstance(operations, RedisOperationStore)
        script = self._guarded_set_text
        pipe = self._client.pipeline(transaction=False)
        for state in states:
            key = contact_key(self._prefix, state.workspace, state.contact_id)
            pipe.eval(script, 1, key, *self._args(state))
        operations.add_records(pipe, outcomes)
        pipe.execute()

    def _evalsha_all(self, calls: list[tuple[str, list[bytes | int]]]) -> None:
        """One pipeline of ``EVALSHA`` (a ``Script`` call in a pipeline would cost redis-py a
        ``SCRIPT EXISTS`` round trip on every execute)."""
        pipe = self._client.pipeline(transaction=False)
        for key, args in calls:
            pipe.evalsha(self._guarded_set.sha, 1, key, *args)
        pipe.execute()

    def _args(self, state: ContactState) -> list[bytes | int]:
        body = b""
        if state.alive:
            resource = contact_resource(
                state.contact_id,
                state.fields,
                version=state.version,
                created_at=state.created_at,
                updated_at=state.updated_at,
            )
            body = encode_resource(resource)
        return [state.version, body, self._ttl_s]
