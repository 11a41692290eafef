#!/usr/bin/env bash
# Start LocalStack's SQS on port ${SQS_PORT:-4566} in the foreground, from its own virtualenv,
# with the settings docs/architecture.md §8 measured on this machine (no Docker, nothing written outside
# ${SQS_DATA_DIR}). Usage: deploy/local/sqs-server.sh   (make up runs it in the background)
# Clients use 127.0.0.1, but LocalStack's gateway (twisted) binds its IPv4 port on every interface
# whatever GATEWAY_LISTEN's host says (its runtime/server/twisted.py leaves the interface as a
# TODO): on a machine others can reach, close ${SQS_PORT} in its firewall, or use
# docker-compose.yml, which publishes it on 127.0.0.1 only. The queues hold contact data.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
port=${SQS_PORT:-4566}
data=${SQS_DATA_DIR:-$root/.run/localstack}
mkdir -p "$data"
export SERVICES=sqs GATEWAY_LISTEN="127.0.0.1:$port" OVERRIDE_IN_DOCKER=0 DNS_ADDRESS=0 \
  FILESYSTEM_ROOT="$data" SQS_ENDPOINT_STRATEGY=path DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
  LOCALSTACK_HOST="127.0.0.1:$port"
exec "$root/.venv-localstack/bin/python" -m localstack.runtime.main
