"""Fewer glibc malloc arenas for a process with several threads (issue 13, RSS goal).

glibc gives a thread that allocates while another holds the main arena an arena of its own, up
to 8 per CPU, and an arena keeps the memory it once held. Our threads mostly allocate holding
the GIL, so they seldom contend, but each one that ever did keeps its arena: a command API
process that sent a 10,000-card import on 8 threads kept +40 MiB, and the worker's main process
(its receive loop, the ``DeleteMessageBatch`` thread, the metrics server) grew past the 120 MiB
goal of ``make bench``. Two arenas per process keep that bounded (bench/README.md, "Import 202
and RSS").
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

#: glibc's ``mallopt`` parameter ``M_ARENA_MAX`` (malloc.h).
M_ARENA_MAX: Final = -8
#: Arenas per process.
MALLOC_ARENAS: Final = 2


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap this process's glibc malloc arenas at ``arenas`` (call it before its threads start;
    a forked child keeps the cap). Returns whether the cap was set: not when
    ``MALLOC_ARENA_MAX`` is set (glibc read it already, and the operator's value wins), nor
    when the C library is not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
