"""Where the CPU went: CPU time per component of one repetition of a ``make bench`` figure.

On the benchmark machine (2 CPUs) PostgreSQL, Redis, LocalStack (SQS), the load generator and
our own processes share the CPUs, so a figure that misses its goal is explained by how many
microseconds of CPU each of them spent per request (issue 13: "a profile showing the time is
in SQS, PostgreSQL or the kernel, not in our code").

``snapshot()`` reads every process of ``/proc`` (``utime``+``stime`` of the process and
``cutime``+``cstime`` of its reaped children, in clock ticks) and ``/proc/stat``; ``account``
turns two snapshots into CPU seconds per component and microseconds per request. Snapshots
are only taken at repetition boundaries (a few ms each), never during the timed load.

Attribution rules (``classify``), first match wins:

* a service the bench started (``roots``: its master's pid) and every descendant: that
  service's component (``ours`` for the query API, command API and worker; ``ceiling``,
  ``drf`` for the references);
* ``comm`` ``postgres`` (the postmaster, its backends and auxiliaries): ``postgresql``, except
  a backend of another database than the bench's when ``database`` is given: ``other`` (the
  server is shared; a backend that exits in the window is counted in the postmaster's reaped
  children, whatever its database);
  ``redis-server``: ``redis``; a command line naming ``localstack``: ``sqs``;
* the bench process itself and its other descendants (wrk, redis-benchmark, the in-process
  SQS/PostgreSQL clients of the raw references), and any ``wrk``/``redis-benchmark``: ``load``;
* kernel threads (children of ``kthreadd``, pid 2: softirq, kworkers): ``kernel``;
* everything else (other users of the machine): ``other``.

Redis and LocalStack are counted whole: their CPU includes what other clients of the shared
servers asked of them in the window (compare with a figure that does not use them, e.g. the
ceiling's).

A process that exits during the window (wrk, a closed PostgreSQL backend) is counted through
its parent's ``cutime``+``cstime`` when the parent reaps it, in the parent's component; the
ticks it had already used at the first snapshot are subtracted there, so only the window's CPU
remains.
``idle`` is ``cpus x wall`` minus the attributed CPU; ``unattributed`` is what ``/proc/stat``
says was busy (user, nice, system, irq, softirq) minus the attributed CPU (short-lived
processes nobody tracked reaped, interrupts), and ``steal`` the hypervisor's share.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The components of the "where the CPU went" table, in its column order.
COMPONENTS = ("ours", "ceiling", "drf", "postgresql", "redis", "sqs", "load", "kernel", "other")
#: Components whose processes ``account`` also lists one by one (the bench's own services).
SERVICES = frozenset({"ours", "ceiling", "drf"})
#: Process names (``comm``) of load generators started outside the bench's process tree.
LOAD_COMMANDS = frozenset({"wrk", "redis-benchmark"})
_PROC = Path("/proc")
_KTHREADD = 2
#: A PostgreSQL backend's process title: ``postgres: [cluster: ]<user> <database> <client>
#: <state>``, the client ``host(port)`` or ``[local]``.
_BACKEND_TITLE = re.compile(r"(\S+) (\S+) (?:\S+\(\d+\)|\[local\]) ")


@dataclass(frozen=True)
class Proc:
    """One process at one instant; times in clock ticks (``SC_CLK_TCK`` per second)."""

    pid: int
    ppid: int
    comm: str
    #: Start time after boot, in ticks: with ``pid``, identifies the process across reuse.
    start: int
    user: int
    system: int
    #: ``cutime`` + ``cstime``: CPU of the children it has reaped (and theirs, recursively).
    children: int
    command: str = ""


@dataclass(frozen=True)
class Snapshot:
    """Every process, the machine's busy/steal ticks and the wall clock at one instant."""

    procs: Mapping[int, Proc]
    wall_s: float
    busy_ticks: int
    steal_ticks: int
    self_pid: int = field(default_factory=os.getpid)


def read_proc(pid: int) -> Proc | None:
    """``/proc/<pid>/stat`` (and ``cmdline`` when the name does not say what it is) of
    ``pid``; ``None`` when it is gone or unreadable."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): ppid 4, utime 14, stime 15, cutime 16, cstime 17, start 22
    ppid, user, system = int(fields[1]), int(fields[11]), int(fields[12])
    children = int(fields[13]) + int(fields[14])
    command = ""
    if comm not in LOAD_COMMANDS and comm != "redis-server" and ppid:
        try:
            command = (_PROC / str(pid) / "cmdline").read_bytes()[:300].decode(errors="replace")
        except OSError:
            command = ""
    return Proc(pid, ppid, comm, int(fields[19]), user, system, children, command)


def _machine_ticks() -> tuple[int, int]:
    """Busy (user, nice, system, irq, softirq) and steal ticks of all CPUs, from /proc/stat."""
    cpu = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in cpu[:8])
    return user + nice + system + irq + softirq, steal


def snapshot() -> Snapshot:
    """Every process of the machine now (a few milliseconds: call between repetitions)."""
    procs = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            proc = read_proc(int(entry.name))
            if proc is not None:
                procs[proc.pid] = proc
    busy, steal = _machine_ticks()
    return Snapshot(procs, time.perf_counter(), busy, steal)


def backend_database(proc: Proc) -> str | None:
    """The database a PostgreSQL backend serves, from its process title; ``None`` for the
    postmaster and its auxiliary processes (checkpointer, WAL writer, autovacuum)."""
    found = _BACKEND_TITLE.search(proc.command) if proc.comm == "postgres" else None
    return found.group(2) if found else None


def classify(
    procs: Mapping[int, Proc],
    roots: Mapping[int, str],
    self_pid: int,
    database: str | None = None,
) -> dict[int, str]:
    """The component of every process of ``procs`` (rules in the module docstring);
    ``roots`` maps a started service's master pid to its component. With ``database``, a
    PostgreSQL backend of another database (another user of a shared server) is ``other``."""
    found: dict[int, str] = {}

    def owner(pid: int) -> str | None:
        seen = 0
        while pid in procs and seen < 64:  # walk up to a root, the bench or kthreadd
            if pid in roots:
                return roots[pid]
            if pid == self_pid:
                return "load"
            if procs[pid].ppid == _KTHREADD:
                return "kernel"
            pid, seen = procs[pid].ppid, seen + 1
        return None

    for pid, proc in procs.items():
        component = owner(pid)
        if component is None:
            if proc.comm == "postgres":
                served = backend_database(proc)
                mine = database is None or served is None or served == database
                component = "postgresql" if mine else "other"
            elif proc.comm == "redis-server":
                component = "redis"
            elif "localstack" in proc.command:
                component = "sqs"
            elif proc.comm in LOAD_COMMANDS:
                component = "load"
            else:
                component = "other"
        found[pid] = component
    return found


def _window(
    before: Snapshot,
    after: Snapshot,
    roots: Mapping[int, str],
    database: str | None,
    processes: dict[str, int],
) -> tuple[dict[str, int], dict[str, int]]:
    """Total and system ticks per component between two snapshots; the ticks of each live
    process of ``SERVICES`` go into ``processes`` too (``<component>/<pid>``)."""
    total = dict.fromkeys(COMPONENTS, 0)
    system = dict.fromkeys(COMPONENTS, 0)
    now = classify(after.procs, roots, after.self_pid, database)
    then = classify(before.procs, roots, before.self_pid, database)
    for pid, proc in after.procs.items():
        found = before.procs.get(pid)
        old = found if found is not None and found.start == proc.start else None
        if old is None:  # born during the window
            old = Proc(pid, proc.ppid, proc.comm, proc.start, 0, 0, 0)
        component = now[pid]
        ticks = proc.user + proc.system - old.user - old.system + proc.children - old.children
        total[component] += ticks
        system[component] += proc.system - old.system
        if component in SERVICES:
            processes[f"{component}/{pid}"] = ticks
    for pid, old in before.procs.items():
        later = after.procs.get(pid)
        if later is None or later.start != old.start:  # gone: its reaper's cutime has it all
            reaper = then.get(old.ppid, then[pid])  # so take the part before from the reaper
            total[reaper] -= old.user + old.system + old.children
    return total, system


def account(
    before: Snapshot,
    after: Snapshot,
    roots: Mapping[int, str],
    count: float,
    cpus: int | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """CPU per component between ``before`` and ``after`` for ``count`` requests (or events,
    messages, rows: the figure's unit).

    Returns ``wall_s``, ``count``, ``cpu_s`` (seconds per component, plus ``idle``,
    ``unattributed`` and ``steal``), ``sys_share`` (the system/kernel-mode share of each
    component's CPU, 0–1) and ``us_per`` (microseconds of CPU per unit per component, plus
    ``idle``, ``total`` = the attributed components) and ``processes_cpu_s`` (seconds of each
    process of ``SERVICES``, ``<component>/<pid>``: how the load spread over a service's
    workers). ``cpus`` defaults to
    ``os.cpu_count()``; ``database``: see ``classify``."""
    hz = os.sysconf("SC_CLK_TCK")
    cpus = cpus or os.cpu_count() or 1
    wall = after.wall_s - before.wall_s
    processes: dict[str, int] = {}
    total, system = _window(before, after, roots, database, processes)
    seconds: dict[str, float] = {k: v / hz for k, v in total.items()}
    attributed = sum(seconds.values())
    seconds["idle"] = cpus * wall - attributed
    seconds["unattributed"] = (after.busy_ticks - before.busy_ticks) / hz - attributed
    seconds["steal"] = (after.steal_ticks - before.steal_ticks) / hz
    per = 1e6 / count if count else 0.0
    us_per = {k: round(seconds[k] * per, 1) for k in (*COMPONENTS, "idle")}
    us_per["total"] = round(attributed * per, 1)
    return {
        "wall_s": round(wall, 3),
        "count": count,
        "cpu_s": {k: round(v, 3) for k, v in seconds.items()},
        "sys_share": {k: round(system[k] / total[k], 2) for k in COMPONENTS if total[k] > 0},
        "us_per": us_per,
        "processes_cpu_s": {k: round(v / hz, 3) for k, v in sorted(processes.items())},
    }


def median_us_per(accounts: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Per component, the median over repetitions of ``us_per`` (``account``'s result)."""
    values: dict[str, list[float]] = {}
    for entry in accounts:
        for key, value in entry["us_per"].items():
            values.setdefault(key, []).append(value)
    out = {}
    for key, series in values.items():
        series.sort()
        mid = len(series) // 2
        out[key] = series[mid] if len(series) % 2 else (series[mid - 1] + series[mid]) / 2
    return out


def table(rows: Iterable[tuple[str, str, Mapping[str, float]]]) -> str:
    """The "where the CPU went" table: one line per (figure key, unit, ``median_us_per``),
    microseconds of CPU per unit of each component, idle and the attributed total."""
    columns = (*COMPONENTS, "idle", "total")
    lines = [
        "where the CPU went: microseconds of CPU per request/event (median of repetitions);"
        " idle = CPUs x wall - attributed",
        f"{'figure':<28} {'per':<6}" + "".join(f"{c:>11}" for c in columns),
    ]
    for key, unit, us_per in rows:
        lines.append(
            f"{key[:28]:<28} {unit[:6]:<6}"
            + "".join(f"{us_per.get(c, 0.0):>11.0f}" for c in columns)
        )
    return "\n".join(lines)
