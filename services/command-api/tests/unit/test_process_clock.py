"""One HLC per process: a forked child (gunicorn worker) never shares its parent's node."""

from __future__ import annotations

import os

from command_api.adapters.process_clock import ProcessClock


def test_sequences_increase_within_a_process() -> None:
    clock = ProcessClock()
    readings = [clock.next() for _ in range(1000)]
    assert readings == sorted(readings)
    assert len(set(readings)) == 1000


def test_a_forked_child_gets_its_own_node() -> None:
    clock = ProcessClock()
    parent_node = clock.next().split(".")[1]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its node and leave at once
        os.write(write_end, clock.next().split(".")[1].encode())
        os._exit(0)
    os.close(write_end)
    child_node = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child_node
    assert child_node != parent_node
    assert clock.next().split(".")[1] == parent_node


def test_observe_moves_the_clock_past_another_nodes_sequence() -> None:
    clock = ProcessClock()
    ahead = f"{int(clock.next().split('.')[0], 16) + 10_000_000:016x}.zzzz"
    clock.observe(ahead)
    assert clock.next() > ahead
