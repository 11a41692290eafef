#!/usr/bin/env bash
# `make status`: which of the processes `make up` started are running.
set -uo pipefail
source "$(dirname "$0")/env.sh"
for name in postgres redis sqs command-api query-api worker; do
  pidfile="$run_dir/$name.pid"
  # The embedded servers are listed only when `make up` started them.
  case $name in postgres|redis) [ -f "$pidfile" ] || continue ;; esac
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name: running (pid $(cat "$pidfile"))"
  else
    echo "$name: stopped"
  fi
done
