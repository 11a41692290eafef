#!/usr/bin/env bash
# `make bench [BENCH_ARGS=...]`: check the load tools, start or reuse the `make up` stack, run
# bench/run.py with the stack's settings, and stop the stack afterwards only if this script
# started all of it (BENCH_KEEP_STACK=1 keeps it). See bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../deploy/local/env.sh"

# wrk, the HTTP load generator, is a Debian package (not on PyPI). Install it when we can.
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "wrk (HTTP load generator) is missing: apt-get install -y wrk"
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "make bench needs wrk, the HTTP load generator: sudo apt-get install -y wrk" >&2
    exit 1
  fi
fi
for tool in redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "make bench needs $tool: apt-get install -y redis-tools" >&2; exit 1; }
done

alive() { [ -f "$run_dir/$1.pid" ] && kill -0 "$(cat "$run_dir/$1.pid")" 2>/dev/null; }
was_running=0
for name in sqs command-api query-api worker; do alive "$name" && was_running=1; done
if curl -fsS --max-time 2 "$SQS_ENDPOINT_URL/_localstack/health" >/dev/null 2>&1; then was_running=1; fi

echo "make bench: the make up stack (started if needed; its services and data are not used)"
# The stack outlives this run when it was already up, so it must not inherit our open files:
# under `flock /work/notes/bench.lock make bench`, a LocalStack started here kept the lock's file
# descriptor, and with it the lock, after the run ended, and every later run waited forever.
(
  for fd in /proc/self/fd/*; do
    n=${fd##*/}
    if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-" 2>/dev/null || true; fi
  done
  exec "$here/../deploy/local/up.sh"
) >"$run_dir/bench-up.log" 2>&1 || { cat "$run_dir/bench-up.log" >&2; exit 1; }

status=0
"$root/.venv/bin/python" "$here/run.py" "$@" || status=$?

if [ "$was_running" = 0 ] && [ "${BENCH_KEEP_STACK:-0}" != 1 ]; then
  echo "make bench: stopping the stack it started (make down)"
  "$here/../deploy/local/down.sh" >/dev/null
fi
exit "$status"
