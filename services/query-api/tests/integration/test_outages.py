"""Dependencies down or hanging: bounded answers, never a hang (cases C18; docs/architecture.md
§5.5).

Time bounds asserted here are generous multiples of the configured timeouts (0.25 s for Redis
by default, 2 s to connect to PostgreSQL), so they hold on a loaded CI machine yet fail loudly
if a call waits on a default (5 s in redis-py, forever in libpq).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import sqlalchemy as sa

from query_api.adapters.sql_read_model import SqlContactReadModel, connection
from query_api.bootstrap import build_engine
from query_api.service_layer.ports import ReadModelUnavailable

#: One request with Redis unreachable: one Redis timeout plus the PostgreSQL read.
BYPASS_BOUND_S = 1.0


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.fixture(params=["refused", "silent"])
def redis_down_url(request, stand_in, refused_port):
    if request.param == "refused":
        return f"redis://127.0.0.1:{refused_port}/0"
    return stand_in.url


def test_c18_redis_unavailable_reads_fall_back_to_postgresql(
    make_app, settings, seed, redis_down_url
):
    tag = f"c18-{uuid.uuid4().hex[:8]}"
    contact_id = seed.contact(version=5, tags=[tag])
    operation_id = str(uuid.uuid4())
    seed.outcome(operation_id, contact_id, "applied", version=5)
    client = make_app(settings.model_copy(update={"redis_url": redis_down_url})).test_client()

    got, first_s = _timed(lambda: client.get(f"/v1/contacts/{contact_id}"))
    assert got.status_code == 200
    assert got.headers["X-Cache"] == "bypass"
    assert got.headers["ETag"] == '"5"'
    assert first_s < BYPASS_BOUND_S

    # After `redis_breaker_failures` failures the circuit opens: no more Redis timeouts paid.
    for _ in range(settings.redis_breaker_failures):
        client.get(f"/v1/contacts/{contact_id}")
    again, open_s = _timed(lambda: client.get(f"/v1/contacts/{contact_id}"))
    assert again.headers["X-Cache"] == "bypass"
    assert open_s < settings.redis_socket_timeout_s

    listed = client.get(f"/v1/contacts?tag={tag}")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.get_json()["items"]] == [contact_id]

    status = client.get(f"/v1/operations/{operation_id}")
    assert status.status_code == 200
    assert status.get_json()["status"] == "applied"

    unknown = client.get(f"/v1/operations/{uuid.uuid4()}")
    assert unknown.status_code == 503
    assert unknown.headers["Retry-After"]

    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "degraded"


def test_c18_redis_recovers_after_the_breaker_cools_down(make_app, settings, seed, stand_in):
    contact_id = seed.contact(version=1)
    reset_s = 0.3
    client = make_app(
        settings.model_copy(
            update={
                "redis_url": stand_in.url,
                "redis_breaker_failures": 1,
                "redis_breaker_reset_s": reset_s,
            }
        )
    ).test_client()
    assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "bypass"
    assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "bypass"

    stand_in.mode = "forward"
    time.sleep(reset_s)

    assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "miss"
    assert client.get(f"/v1/contacts/{contact_id}").headers["X-Cache"] == "hit"


@pytest.fixture(params=["refused", "silent"])
def database_down_url(request, stand_in, refused_port, reader_database_url):
    # The silent stand-in never answers the PostgreSQL handshake.
    port = refused_port if request.param == "refused" else stand_in.port
    return sa.make_url(reader_database_url).set(port=port).render_as_string(hide_password=False)


def test_postgresql_unavailable_is_503_with_retry_after_not_a_hang(
    make_app, settings, database_down_url
):
    client = make_app(settings.model_copy(update={"database_url": database_down_url})).test_client()

    paths = (
        f"/v1/contacts/{uuid.uuid4()}",
        "/v1/contacts",
        f"/v1/operations/{uuid.uuid4()}",
        "/v1/contacts/export",
        "/v1/contacts/changes",
    )
    for path in paths:
        response, elapsed_s = _timed(lambda path=path: client.get(path))
        assert response.status_code == 503, path
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"] == str(settings.retry_after_s)
        assert elapsed_s < settings.db_connect_timeout_s + 1.5

    ready, elapsed_s = _timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503
    assert elapsed_s < 1.5


def test_statement_timeout_ends_a_slow_query(settings):
    engine = build_engine(settings.model_copy(update={"db_statement_timeout_ms": 100}))
    try:
        started = time.monotonic()
        with pytest.raises(ReadModelUnavailable), connection(engine) as conn:
            conn.execute(sa.text("SELECT pg_sleep(2)"))
        assert time.monotonic() - started < 1.0
    finally:
        engine.dispose()


def test_the_query_role_cannot_write(settings, seed):
    contact_id = seed.contact()
    engine = build_engine(settings)
    try:
        refused = pytest.raises(sa.exc.DBAPIError, match=r"read-only|permission denied")
        with refused, engine.connect() as conn:
            conn.execute(sa.text("DELETE FROM contacts WHERE id = :id"), {"id": contact_id})
    finally:
        engine.dispose()


def test_a_forked_child_opens_its_own_connections(settings, seed):
    """gunicorn --preload forks after the app may have connected (cases C21): the child must
    not reuse the parent's socket."""
    contact_id = seed.contact(version=3)
    engine = build_engine(settings)
    query = sa.text("SELECT version, pg_backend_pid() FROM contacts WHERE id = :id")
    try:
        with engine.connect() as conn:
            _, parent_backend = conn.execute(query, {"id": contact_id}).one()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                with engine.connect() as conn:
                    version, child_backend = conn.execute(query, {"id": contact_id}).one()
                code = 0 if (version, child_backend != parent_backend) == (3, True) else 2
            finally:
                os.write(write, bytes([code]))
                os._exit(0)
        os.close(write)
        child_code = os.read(read, 1)
        os.waitpid(pid, 0)
        assert child_code == b"\x00"
        with engine.connect() as conn:
            assert conn.execute(query, {"id": contact_id}).one() == (3, parent_backend)
    finally:
        engine.dispose()


def test_a_contact_read_on_a_dead_pooled_connection_reconnects_without_a_ping(
    settings, seed, writer_engine
):
    """No ``pool_pre_ping`` (one round trip less per miss): a pooled connection PostgreSQL
    dropped fails its read, and ``SqlContactReadModel.get`` reads again on a new one."""
    contact_id = seed.contact(version=4)
    engine = build_engine(settings)
    try:
        assert not engine.pool._pre_ping
        with engine.connect() as conn:
            backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with writer_engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            admin.commit()
        read = SqlContactReadModel(engine).get("default", contact_id)

        assert read is not None
        assert read.version == 4
    finally:
        engine.dispose()
