"""``ScriptRunner`` (Lua scripts on connections of its own) on real Redis."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.commands.core import Script

from contacts_infra.redis_client import create_redis
from query_api.adapters.circuit_breaker import CircuitBreaker
from query_api.adapters.redis_calls import RedisCalls
from query_api.adapters.redis_scripts import ScriptRunner
from query_api.service_layer.ports import CacheUnavailable
from support.fault_proxy import FaultProxy


@pytest.fixture
def client(settings):
    client = create_redis(settings, client_name="query-api")
    yield client
    client.close()


@pytest.fixture
def proxy(settings) -> Iterator[FaultProxy]:
    url = redis.connection.parse_url(settings.redis_url)
    proxy = FaultProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379)))).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied(settings, proxy):
    client = create_redis(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"}),
        client_name="query-api",
    )
    yield client
    client.close()


def _eventually(check: Callable[[], bool], within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _fresh_script(client: redis.Redis, body: str) -> Script:
    """A script the server has never seen (a unique comment changes its digest)."""
    return client.register_script(f"-- {uuid.uuid4().hex}\n{body}")


def test_a_script_runs_with_its_keys_and_args_on_one_reused_connection(client, prefix):
    runner = ScriptRunner(client)
    script = _fresh_script(client, "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
    try:
        for _ in range(3):  # the first call loads the script (EVAL), the others EVALSHA
            reply = runner.run(script, [f"{prefix}k"], ["a", 41])
            assert reply == [f"{prefix}k".encode(), b"a", 42]
        assert len(runner._idle) == 1
        assert client.script_exists(script.sha) == [True]
    finally:
        runner.close()


def test_an_error_reply_raises_and_keeps_the_connection(client):
    runner = ScriptRunner(client)
    failing = _fresh_script(client, "return redis.error_reply('WRONGTYPE not a hash')")
    working = _fresh_script(client, "return 7")
    try:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            runner.run(failing, [], [])
        kept = runner._idle[-1]
        assert runner.run(working, [], []) == 7
        assert runner._idle == [kept]
    finally:
        runner.close()


def test_an_unreachable_server_is_an_outage_for_the_breaker(settings):
    down = create_redis(
        settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), client_name="t"
    )
    breaker = CircuitBreaker(1, 60.0)
    calls = RedisCalls(down, breaker, scripts=ScriptRunner(down))
    script = down.register_script("return 1")

    with pytest.raises(CacheUnavailable, match="Redis unavailable"):
        calls.script(script, [], [])
    with pytest.raises(CacheUnavailable, match="circuit is open"):
        calls.script(script, [], [])


def test_a_forked_child_never_uses_its_parents_connections(client):
    runner = ScriptRunner(client)
    script = _fresh_script(client, "return 1")
    try:
        runner.run(script, [], [])
        parents = runner._idle[-1]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one byte, 0 when it ran on a connection of its own
            code = 1
            try:
                ran = runner.run(script, [], [])
                code = 0 if ran == 1 and runner._idle and runner._idle[-1] is not parents else 2
            finally:
                os.write(write, bytes([code]))
                os._exit(0)
        os.close(write)
        child_code = os.read(read, 1)
        os.waitpid(pid, 0)

        assert child_code == b"\x00"
        assert runner.run(script, [], []) == 1
        assert runner._idle == [parents]  # the parent's socket was left alone
    finally:
        runner.close()


def test_a_sent_script_runs_without_the_caller_waiting_for_redis(proxied, client, prefix, proxy):
    runner = ScriptRunner(proxied)
    script = _fresh_script(client, "return redis.call('INCR', KEYS[1])")
    key = f"{prefix}sent"
    try:
        runner.send(script, [key], [])  # connects (and turns replies off) while Redis answers
        assert _eventually(lambda: client.get(key) == b"1")
        # A wide margin: a busy CI machine may stall this thread for a few hundred ms.
        with proxy.fault("blackhole", 3.0):
            started = time.monotonic()
            runner.send(script, [key], [])
            assert time.monotonic() - started < 1.5  # a reply awaited would take 3 s or more
            assert client.get(key) == b"1"  # not run yet: held between us and Redis
        assert _eventually(lambda: client.get(key) == b"2")
        runner.send(script, [key], [])  # Redis sent no reply, so none is pending anywhere
        assert _eventually(lambda: client.get(key) == b"3")
    finally:
        runner.close()


def test_a_connection_the_server_closed_is_replaced_before_sending(proxied, client, prefix, proxy):
    runner = ScriptRunner(proxied)
    script = _fresh_script(client, "return redis.call('INCR', KEYS[1])")
    key = f"{prefix}resent"
    try:
        runner.send(script, [key], [])
        assert _eventually(lambda: client.get(key) == b"1")
        proxy.set_mode("refuse")  # closes every connection, as a restarted server does
        proxy.set_mode("pass")
        time.sleep(0.05)  # the close has reached our socket

        runner.send(script, [key], [])  # not lost into the closed socket

        assert _eventually(lambda: client.get(key) == b"2")
    finally:
        runner.close()


def test_a_sent_script_that_cannot_be_sent_is_an_outage_for_the_breaker(settings):
    down = create_redis(
        settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), client_name="t"
    )
    calls = RedisCalls(down, CircuitBreaker(1, 60.0), scripts=ScriptRunner(down))
    script = down.register_script("return 1")

    with pytest.raises(CacheUnavailable, match="Redis unavailable"):
        calls.send_script(script, [], [])
    with pytest.raises(CacheUnavailable, match="circuit is open"):
        calls.send_script(script, [], [])
