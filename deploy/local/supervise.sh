#!/usr/bin/env bash
# supervise.sh COMMAND [ARGS...]: what Kubernetes does for a pod, for the local stack. Runs
# COMMAND and starts it again (after 1 s) whenever it exits with a failure, e.g. the worker's
# watchdog exit after a stalled SQS consumer (case C15). Stops when COMMAND exits cleanly, or on
# SIGTERM/SIGINT, which it forwards.
set -u
child=0
stopping=0
trap 'stopping=1; [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  "$@" &
  child=$!
  wait "$child"
  status=$?
  while kill -0 "$child" 2>/dev/null; do  # wait returns early when a trapped signal arrives
    wait "$child"
    status=$?
  done
  if [ "$stopping" = 1 ] || [ "$status" = 0 ]; then exit "$status"; fi
  echo "supervise: $1 exited with status $status; starting it again in 1 s" >&2
  sleep 1
done
