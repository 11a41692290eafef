"""``make bench``'s "where the CPU went" accounting (bench/cpuacct.py), on real processes.

Each test starts children that burn a known amount of their own CPU time (measured by the
child with ``time.process_time``, not by a clock) between two snapshots, and checks the
component the accounting charges it to: a started service and its descendants, a process
that exits (and is reaped) during the window, a process named like a server.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg2
import pytest

from support.resources import SERVER_URL

BENCH = Path(__file__).resolve().parents[2] / "bench"
#: CPU seconds a child burns in the window; accounting has clock-tick (10 ms) resolution.
BURN_S = 0.3
TICKS_SLACK_S = 0.06

#: A child that waits for a line on stdin, burns BURN_S of CPU (``argv[1]`` seconds first,
#: before saying ready, if given), then says done and waits for stdin to close.
BURNER = """
import sys, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
if len(sys.argv) > 2:
    open("/proc/self/comm", "w").write(sys.argv[2])
burn(float(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
burn(BURN_S)
print("done", flush=True)
sys.stdin.read()
""".replace("BURN_S", repr(BURN_S))


def _cpuacct() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("cpuacct")


class Burner:
    """A burning child process (``BURNER``), ready to burn when ``go`` is called."""

    def __init__(self, before_s: float = 0.0, name: str | None = None) -> None:
        argv = [sys.executable, "-c", BURNER, str(before_s), *([name] if name else [])]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def go(self) -> None:
        """Burn ``BURN_S`` of CPU now; returns when the child has."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self.readline() == "done"

    def finish(self) -> None:
        """Let it exit and reap it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


@pytest.fixture
def burners() -> Iterator[list[Burner]]:
    started: list[Burner] = []
    yield started
    for burner in started:
        if burner.process.poll() is None:
            burner.process.kill()
            burner.process.wait(30)


def test_a_service_s_cpu_is_charged_to_its_component_per_request(
    burners: list[Burner],
) -> None:
    cpuacct = _cpuacct()
    burner = Burner()
    burners.append(burner)
    before = cpuacct.snapshot()
    burner.go()
    after = cpuacct.snapshot()

    spent = cpuacct.account(before, after, {burner.process.pid: "ours"}, count=1000, cpus=2)

    assert BURN_S - TICKS_SLACK_S <= spent["cpu_s"]["ours"] <= BURN_S + TICKS_SLACK_S
    assert spent["us_per"]["ours"] == pytest.approx(spent["cpu_s"]["ours"] * 1000, abs=1)
    assert spent["cpu_s"]["idle"] == pytest.approx(
        2 * spent["wall_s"] - sum(spent["cpu_s"][c] for c in cpuacct.COMPONENTS), abs=0.002
    )
    assert 0 <= spent["sys_share"]["ours"] <= 1
    assert spent["processes_cpu_s"] == {f"ours/{burner.process.pid}": spent["cpu_s"]["ours"]}


def test_the_descendants_of_a_service_are_charged_to_it(burners: list[Burner]) -> None:
    cpuacct = _cpuacct()
    parent = Burner()  # stands for a gunicorn master; its child for a worker
    burners.append(parent)
    child = Burner()
    burners.append(child)
    procs = cpuacct.snapshot().procs
    # The child's parent is this test process, so re-root: the test's pid is the "service".
    components = cpuacct.classify(procs, {parent.process.pid: "ceiling"}, self_pid=-1)
    assert components[parent.process.pid] == "ceiling"
    components = cpuacct.classify(procs, {procs[child.process.pid].ppid: "drf"}, self_pid=-1)
    assert components[child.process.pid] == "drf"
    assert components[parent.process.pid] == "drf"


def test_a_process_that_exits_in_the_window_counts_only_its_window_cpu(
    burners: list[Burner],
) -> None:
    """It burned BURN_S before the window and BURN_S in it, then exited and was reaped by this
    process (the bench: ``load``): only the second BURN_S is the window's."""
    cpuacct = _cpuacct()
    burner = Burner(before_s=BURN_S)
    burners.append(burner)
    before = cpuacct.snapshot()
    burner.go()
    burner.finish()
    born = Burner()  # born and gone within the window: all of its CPU is the window's
    burners.append(born)
    born.go()
    born.finish()
    after = cpuacct.snapshot()

    spent = cpuacct.account(before, after, {}, count=1)

    burned = spent["cpu_s"]["load"]
    assert burned >= 2 * BURN_S - TICKS_SLACK_S  # the in-window burns, plus start-ups
    assert burned < 3 * BURN_S  # not the BURN_S burned before the window


def test_servers_are_recognised_by_their_process_name(burners: list[Burner]) -> None:
    cpuacct = _cpuacct()
    for name in ("postgres", "redis-server", "wrk"):
        burners.append(Burner(name=name))
    procs = cpuacct.snapshot().procs

    components = cpuacct.classify(procs, {}, self_pid=-1)

    assert [components[b.process.pid] for b in burners] == ["postgresql", "redis", "load"]
    assert all(components[pid] == "kernel" for pid, p in procs.items() if p.ppid == 2)


def test_the_table_shows_the_median_of_the_repetitions() -> None:
    cpuacct = _cpuacct()
    reps = [{"us_per": {"ours": v, "postgresql": 2 * v, "idle": 1.0}} for v in (100, 300, 200)]

    medians = cpuacct.median_us_per(reps)
    text = cpuacct.table([("query_miss_rps", "req", medians)])

    assert medians == {"ours": 200, "postgresql": 400, "idle": 1.0}
    row = text.splitlines()[-1].split()
    assert row[:5] == ["query_miss_rps", "req", "200", "0", "0"]
    assert row[5] == "400"


def test_a_postgresql_backend_of_another_database_is_other() -> None:
    """The PostgreSQL server is shared: only the bench database's backends (and the server's
    own processes) are ``postgresql`` when the accounting is given that database."""
    cpuacct = _cpuacct()
    dsn = SERVER_URL.replace("postgresql+psycopg2", "postgresql") + "/postgres"
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
        procs = cpuacct.snapshot().procs
    conn.close()

    assert cpuacct.backend_database(procs[backend]) == "postgres"
    assert cpuacct.classify(procs, {}, -1, "postgres")[backend] == "postgresql"
    assert cpuacct.classify(procs, {}, -1)[backend] == "postgresql"
    assert cpuacct.classify(procs, {}, -1, "contacts_bench")[backend] == "other"
    postmaster = procs[backend].ppid
    assert cpuacct.backend_database(procs[postmaster]) is None
    assert cpuacct.classify(procs, {}, -1, "contacts_bench")[postmaster] == "postgresql"
