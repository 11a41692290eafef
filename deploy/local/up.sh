#!/usr/bin/env bash
# `make up`: start the whole system on this machine without Docker. Idempotent: what already runs
# is left running. PostgreSQL and Redis: the ones running, or embedded ones started from pip wheels
# (EMBEDDED_SERVERS, deploy/local/embedded.sh). A service is
# ready when its URL answers and the process started here holds its port (so another program
# on the port cannot pass for it); logs are appended to .run/NAME.log, one separator per start.
set -euo pipefail
here=$(dirname "$0")
source "$here/env.sh"
source "$here/lib.sh"
bin="$root/.venv/bin"
source "$here/embedded.sh"

if [ -n "${RATE_LIMIT_ROUTES:-}" ]; then
  echo "RATE_LIMIT_ROUTES names the endpoints of one API: set COMMAND_RATE_LIMIT_ROUTES and" \
    "QUERY_RATE_LIMIT_ROUTES in .env instead (README, \"Rate limits\")" >&2
  exit 1
fi

echo "PostgreSQL, Redis"
database_and_cache

echo "SQS (LocalStack) on $SQS_ENDPOINT_URL"
if curl -fsS --max-time 2 "$SQS_ENDPOINT_URL/_localstack/health" 2>/dev/null | grep -q '"sqs": "\(available\|running\)"'; then
  echo "  already serving"
else
  SQS_DATA_DIR="$run_dir/localstack" start sqs "$here/sqs-server.sh"
  wait_ready sqs "$SQS_ENDPOINT_URL/_localstack/health" "$SQS_PORT" 60
fi

echo "Database, queues"
"$bin/contact-worker-admin" create-database
"$bin/contact-worker-admin" migrate
"$bin/contact-worker-admin" create-queues

echo "API key"
dev_api_key "$bin/python"
if [ "${AUTH_DISABLED:-false}" = "true" ]; then
  echo "  AUTH_DISABLED=true: both APIs are open to anyone who reaches them (local use only)"
elif [ -n "$DEV_API_KEY" ]; then
  echo "  development key in .run/dev-api-key (the services get only its SHA-256 hash)"
else
  echo "  AUTH_API_KEY_HASHES is set: the keys are yours"
fi

token_secret "$bin/python"

echo "Services"
# No control socket: gunicorn >= 25 puts one per user at one path, which two servers would share.
RATE_LIMIT_ROUTES="$COMMAND_RATE_LIMIT_ROUTES" \
  start command-api "$bin/gunicorn" -c python:command_api.entrypoints.gunicorn_conf \
  --bind "127.0.0.1:$COMMAND_API_PORT" --workers "$COMMAND_API_WORKERS" \
  --worker-tmp-dir /dev/shm --timeout 30 --graceful-timeout 10 --no-control-socket \
  --access-logfile - 'command_api.entrypoints.app:create_app()'
QUERY_API_BIND="127.0.0.1:$QUERY_API_PORT" QUERY_API_WORKERS="$GUNICORN_WORKERS" \
  RATE_LIMIT_ROUTES="$QUERY_RATE_LIMIT_ROUTES" \
  start query-api "$bin/gunicorn" -c python:query_api.entrypoints.gunicorn_conf \
  'query_api.entrypoints.app:create_app()'
start worker "$here/supervise.sh" "$bin/contact-worker" --pool prefork \
  --concurrency "$WORKER_CONCURRENCY"
wait_ready command-api "http://127.0.0.1:$COMMAND_API_PORT/readyz" "$COMMAND_API_PORT" 60
wait_ready query-api "http://127.0.0.1:$QUERY_API_PORT/readyz" "$QUERY_API_PORT" 60
deadline=$((SECONDS + 60))
until grep -q "ready\." < <(since_start worker); do
  running worker || not_ready worker "exited before it was ready"
  ((SECONDS < deadline)) || not_ready worker "not ready after 60 s"
  sleep 0.3
done

if [ -n "$DEV_API_KEY" ]; then
  key_line="$DEV_API_KEY   (all scopes; kept in .run/dev-api-key)"
elif [ "${AUTH_DISABLED:-false}" = "true" ]; then
  key_line="none needed: AUTH_DISABLED=true"
else
  key_line="yours, from AUTH_API_KEY_HASHES (.env)"
fi

cat <<MSG

The contacts platform is up.
  command API  http://127.0.0.1:$COMMAND_API_PORT/v1   (docs: http://127.0.0.1:$COMMAND_API_PORT/docs)
  query API    http://127.0.0.1:$QUERY_API_PORT/v1   (docs: http://127.0.0.1:$QUERY_API_PORT/docs)
  SQS          $SQS_ENDPOINT_URL  queue $SQS_QUEUE_NAME, dead-letter queue $SQS_DLQ_NAME
               (LocalStack listens on every interface: firewall port $SQS_PORT on a shared network)
  logs         .run/*.log          stop with: make down
  API key      $key_line

Try (every /v1 request needs the key: Authorization: Bearer <key>):
  export CONTACTS_API_KEY=${DEV_API_KEY:-<your key>}
  curl -si -X POST http://127.0.0.1:$COMMAND_API_PORT/v1/contacts \\
       -H "Authorization: Bearer \$CONTACTS_API_KEY" -H 'Content-Type: application/json' \\
       -d '{"first_name": "Rosa", "last_name": "Example", "email": "rosa@example.com"}'
  curl -s -H "Authorization: Bearer \$CONTACTS_API_KEY" \\
       http://127.0.0.1:$QUERY_API_PORT/v1/operations/<operation_id from the answer>
  curl -si -H "Authorization: Bearer \$CONTACTS_API_KEY" http://127.0.0.1:$QUERY_API_PORT/v1/contacts/<id>
MSG

second_workspace_help
