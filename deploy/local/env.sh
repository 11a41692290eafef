# Sourced by the local scripts: .env.example's defaults, then .env's overrides, all exported.
# CONTACTS_ENV_FILE and CONTACTS_RUN_DIR replace .env and .run/ (tests run a stack of their own).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run_dir=${CONTACTS_RUN_DIR:-$root/.run}
env_file=${CONTACTS_ENV_FILE:-$root/.env}
set -a
# shellcheck disable=SC1091
source "$root/.env.example"
example_sqs_url=$SQS_ENDPOINT_URL
example_query_url=$QUERY_API_BASE_URL
example_database_url=$DATABASE_URL
example_redis_url=$REDIS_URL
# shellcheck disable=SC1090
[ -f "$env_file" ] && source "$env_file"
# URLs that .env left at their defaults follow the ports it set (a second stack on this machine
# changes only the ports, not every URL built on them).
[ "$SQS_ENDPOINT_URL" = "$example_sqs_url" ] && SQS_ENDPOINT_URL="http://127.0.0.1:$SQS_PORT"
[ "$QUERY_API_BASE_URL" = "$example_query_url" ] &&
  QUERY_API_BASE_URL="http://127.0.0.1:$QUERY_API_PORT"
set +a
mkdir -p "$run_dir"
