"""``cap_malloc_arenas`` in a child process of its own (the cap is per process)."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import sys
from contacts_infra.malloc_arenas import cap_malloc_arenas
print(cap_malloc_arenas())
"""


def run_child(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_cap_is_set_on_glibc() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert run_child(env) == "True"


def test_an_operators_malloc_arena_max_wins() -> None:
    assert run_child({**os.environ, "MALLOC_ARENA_MAX": "4"}) == "False"
