# Sourced by the local scripts: .env.example's defaults, then .env's overrides, all exported.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run_dir="$root/.run"
set -a
# shellcheck disable=SC1091
source "$root/.env.example"
# shellcheck disable=SC1091
[ -f "$root/.env" ] && source "$root/.env"
set +a
mkdir -p "$run_dir"
