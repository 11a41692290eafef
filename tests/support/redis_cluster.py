"""A real Redis Cluster of three primaries on loopback, from the machine's ``redis-server``.

Each node is a ``redis-server`` process with ``cluster-enabled yes`` on a free port (and a free
cluster bus port, ``cluster-port``), its data and ``nodes.conf`` in a temporary directory,
persistence off; ``redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`` assigns
the 16384 slots. The context manager yields once every node reports ``cluster_state:ok`` and
sees every other node, and stops the processes and removes the directory afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis

from support.processes import free_port

#: Slots of a Redis Cluster (the CRC16 of a key's hash tag, modulo this).
CLUSTER_SLOTS = 16384


class RedisClusterUnavailable(RuntimeError):
    """``redis-server`` or ``redis-cli`` is not on the PATH."""


def _binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RedisClusterUnavailable("redis-server and redis-cli are needed on the PATH")
    return server, cli


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _start_node(server: str, port: int, bus_port: int, directory: Path) -> subprocess.Popen[bytes]:
    directory.mkdir()
    command = [
        server,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--cluster-enabled", "yes",
        "--cluster-port", str(bus_port),
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", "5000",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "no",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait(condition: str, check: Callable[[], bool], deadline: float) -> None:
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis Cluster: {condition} not reached in time")
        time.sleep(0.05)


def _cluster_ready(clients: list[redis.Redis]) -> bool:
    for client in clients:
        fields = {k: str(v) for k, v in client.execute_command("CLUSTER INFO").items()}
        if fields.get("cluster_state") != "ok":
            return False
        if fields.get("cluster_slots_ok") != str(CLUSTER_SLOTS):
            return False
        if fields.get("cluster_known_nodes") != str(len(clients)):
            return False
    return True


@contextmanager
def redis_cluster(primaries: int = 3, timeout_s: float = 30.0) -> Iterator[list[int]]:
    """Start a cluster of ``primaries`` nodes on 127.0.0.1 and yield their ports.

    Raises ``RedisClusterUnavailable`` when the Redis binaries are missing, ``TimeoutError``
    when the nodes do not answer or agree within ``timeout_s`` seconds, and
    ``subprocess.CalledProcessError`` when ``redis-cli --cluster create`` fails."""
    server, cli = _binaries()
    deadline = time.monotonic() + timeout_s
    ports = _distinct_ports(2 * primaries)
    node_ports, bus_ports = ports[:primaries], ports[primaries:]
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        clients: list[redis.Redis] = []
        for port, bus_port in zip(node_ports, bus_ports, strict=True):
            stack.callback(_stop, _start_node(server, port, bus_port, workdir / str(port)))
            client = redis.Redis("127.0.0.1", port, socket_timeout=2, socket_connect_timeout=2)
            stack.callback(client.close)
            clients.append(client)
        _wait("every node answers PING", lambda: all(c.ping() for c in clients), deadline)
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in node_ports)]
        subprocess.run(
            [*create, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=max(1.0, deadline - time.monotonic()),
        )
        _wait("cluster_state:ok on every node", lambda: _cluster_ready(clients), deadline)
        yield node_ports
