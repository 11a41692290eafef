# Functions of `make up` (sourced by up.sh; tests/deploy/test_local_scripts.py runs them alone).
# Each process runs in its own session with its pid in $run_dir/NAME.pid and its output
# appended to $run_dir/NAME.log, after a separator line per start, so a restart never erases
# the traceback of the crash before it. Linux only (setsid, /proc).

# The start of each separator line, followed by the date and the name.
START_MARK="----- make up:"

fail() {  # fail MESSAGE: print it to stderr and exit 1
  echo "$1" >&2
  exit 1
}

log_shown() {  # log_shown NAME: NAME's log as a user finds it (relative to the current directory when under it)
  case $run_dir in
    "$PWD"/*) echo "${run_dir#"$PWD"/}/$1.log" ;;
    *) echo "$run_dir/$1.log" ;;
  esac
}

running() {  # running NAME: the process `start NAME` left is alive
  [ -f "$run_dir/$1.pid" ] && kill -0 "$(cat "$run_dir/$1.pid")" 2>/dev/null
}

start() {  # start NAME COMMAND...: in its own session, output appended to $run_dir/NAME.log
  local name=$1; shift
  if running "$name"; then echo "  $name already running (pid $(cat "$run_dir/$name.pid"))"; return; fi
  local log="$run_dir/$name.log"
  printf '%s %s starting %s\n' "$START_MARK" "$(date '+%Y-%m-%d %H:%M:%S')" "$name" >>"$log"
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! >"$run_dir/$name.pid"
  echo "  $name started (pid $!, log $(log_shown "$name"))"
}

since_start() {  # since_start NAME: NAME's log from the separator of its latest start on
  local log="$run_dir/$1.log" line
  [ -f "$log" ] || return 0
  line=$(grep -n -F -- "$START_MARK" "$log" | tail -n 1 | cut -d: -f1) || true
  tail -n +"${line:-1}" "$log"
}

listens() {  # listens PID PORT: PID holds a TCP socket listening on PORT (any address)
  local port inode fd
  port=$(printf ':%04X' "$2")
  for inode in $(awk -v port="$port" '$4 == "0A" && substr($2, length($2) - 4) == port { print $10 }' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    for fd in "/proc/$1/fd/"*; do
      [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ] && return 0
    done
  done
  return 1
}

not_ready() {  # not_ready NAME WHY: fail, naming NAME's log and quoting its last lines
  fail "$1 $2; see $(log_shown "$1"):
$(since_start "$1" | tail -n 8 | sed 's/^/    /')"
}

wait_ready() {  # wait_ready NAME URL PORT SECONDS: URL answers, served by the process `start NAME` left
  local name=$1 url=$2 port=$3 deadline=$((SECONDS + $4)) pid
  until curl -fs -o /dev/null --max-time 2 "$url"; do
    running "$name" || not_ready "$name" "exited before it was ready"
    ((SECONDS <= deadline)) || not_ready "$name" "not ready after $4 s"
    sleep 0.3
  done
  running "$name" || not_ready "$name" "exited, yet $url answers: another process holds port $port"
  pid=$(cat "$run_dir/$name.pid")
  if ! listens "$pid" "$port"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    not_ready "$name" "(pid $pid) does not hold port $port, yet $url answers: another process \
holds the port; stopped $name"
  fi
}

# The local development API key: made once (32 random bytes, base64url) and kept in
# $run_dir/dev-api-key (mode 600, .run/ is not committed); the services get only its SHA-256
# hash, with every scope. Unless AUTH_DISABLED=true or AUTH_API_KEY_HASHES is already set, this
# sets and exports AUTH_API_KEY_HASHES and DEV_API_KEY.
dev_api_key() {  # dev_api_key PYTHON: PYTHON has contacts_http installed
  local python=$1 key_file="$run_dir/dev-api-key" made
  DEV_API_KEY=""
  [ "${AUTH_DISABLED:-false}" = "true" ] && return 0
  [ -n "${AUTH_API_KEY_HASHES:-}" ] && return 0
  if [ ! -s "$key_file" ]; then
    made=$("$python" -m contacts_http.auth.keygen new)  # the key, then its entry
    (umask 077; printf '%s\n' "${made%%$'\n'*}" >"$key_file")
  fi
  DEV_API_KEY=$(cat "$key_file")
  AUTH_API_KEY_HASHES=$("$python" -m contacts_http.auth.keygen entry <"$key_file")
  export AUTH_API_KEY_HASHES DEV_API_KEY
}

# token_secret PYTHON: unless QUERY_TOKEN_SECRET is set (.env), the query API's HMAC key of
# cursors and change tokens from $run_dir/query-token-secret (mode 600), made once at random,
# so tokens outlive a restart; exports QUERY_TOKEN_SECRET.
token_secret() {
  local secret_file="$run_dir/query-token-secret"
  [ -n "${QUERY_TOKEN_SECRET:-}" ] && return 0
  if [ ! -s "$secret_file" ]; then
    (umask 077; "$1" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$secret_file")
  fi
  QUERY_TOKEN_SECRET=$(cat "$secret_file")
  export QUERY_TOKEN_SECRET
}

second_workspace_help() {  # second_workspace_help: how to give a second workspace a key
  if [ "${AUTH_DISABLED:-false}" = "true" ]; then
    echo "  Workspaces: none but default while AUTH_DISABLED=true (README.md, \"Workspaces\")"
    return 0
  fi
  # .env's AUTH_API_KEY_HASHES replaces the development key's entry: keep it in the new value.
  cat <<MSG
  Workspaces: a key without @<workspace> (the development key too) belongs to \`default\`.
  A key for another workspace, e.g. acme:
    .venv/bin/python -m contacts_http.auth.keygen new --workspace acme
  prints the key (give it to acme's client) and its entry <sha256hex>@acme=<scopes>. Add the entry
  in .env, quoted, after the ones the APIs accept now, then restart (make down && make up):
    AUTH_API_KEY_HASHES='${AUTH_API_KEY_HASHES:-<your entries>};<the entry printed for acme>'
MSG
}
