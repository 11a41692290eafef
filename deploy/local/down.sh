#!/usr/bin/env bash
# `make down`: stop exactly the processes `make up` started (their pid files in .run/), each with
# its whole process group: SIGTERM (PostgreSQL: SIGINT to the postmaster, its fast shutdown, which
# does not wait for clients to leave), then SIGKILL after 15 s. The embedded servers go last.
set -uo pipefail
source "$(dirname "$0")/env.sh"
for name in worker command-api query-api sqs redis postgres; do
  pidfile="$run_dir/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    if [ "$name" = postgres ]; then
      kill -INT "$pid"  # the postmaster alone: it stops its own processes
    else
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    fi
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
done
