# Sourced by the local scripts: .env.example's defaults, then .env's overrides, all exported.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run_dir="$root/.run"
set -a
# shellcheck disable=SC1091
source "$root/.env.example"
example_sqs_url=$SQS_ENDPOINT_URL
example_query_url=$QUERY_API_BASE_URL
# shellcheck disable=SC1091
[ -f "$root/.env" ] && source "$root/.env"
# URLs that .env left at their defaults follow the ports it set (a second stack on this machine
# changes only the ports, not every URL built on them).
[ "$SQS_ENDPOINT_URL" = "$example_sqs_url" ] && SQS_ENDPOINT_URL="http://127.0.0.1:$SQS_PORT"
[ "$QUERY_API_BASE_URL" = "$example_query_url" ] &&
  QUERY_API_BASE_URL="http://127.0.0.1:$QUERY_API_PORT"
set +a
mkdir -p "$run_dir"
