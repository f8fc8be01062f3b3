#!/usr/bin/env bash
# The one command that runs Tidings (README: "Run"). For now: a local Redis
# (only if none answers), `tidings demo` publishing realistic ERP events in
# the background, and `tidings tail` showing them here. Ctrl-C stops all of
# it; a Redis this script started is stopped by its PID and kept no data.
#
#   scripts/run.sh                      # 5 events/s
#   scripts/run.sh --rate 20 --chaos    # arguments go to `tidings demo`
#   TIDINGS_REDIS_URL=redis://:pw@127.0.0.1:6380 scripts/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

url="${TIDINGS_REDIS_URL:-redis://127.0.0.1:6379}"
export TIDINGS_REDIS_URL="$url"
# The URL with any password hidden, for everything this script prints.
shown="$(printf '%s' "$url" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')"

cat <<EOF
run: Tidings, the live ERP event feed. This will:
  1. install what is missing (scripts/setup.sh) and build the \`tidings\` command;
  2. use the Redis at $shown if it answers, otherwise start a private
     redis-server there (no persistence, stopped when you press Ctrl-C);
  3. run \`tidings demo\` in the background, publishing stock moves, orders,
     approvals, payments and notices ${*:+(demo arguments: $*)};
  4. run \`tidings tail\` here, one line per event as it is published.
Press Ctrl-C to stop everything.

EOF

scripts/setup.sh
echo "run: building the tidings command (cargo build -p tidings-cli)…"
cargo build --quiet -p tidings-cli
tidings="$(pwd)/target/debug/tidings"

workdir="$(mktemp -d -t tidings-run.XXXXXX)"
redis_pid=""
demo_pid=""

cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$demo_pid" ]] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  if [[ -s "$workdir/demo.log" ]]; then
    echo
    echo "run: what the demo published:"
    sed -n '/^demo: [0-9]* events/,$p' "$workdir/demo.log"
  fi
  if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
    echo "run: stopping the redis-server this script started (pid $redis_pid)"
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Split the URL: scheme://[user:password@]host[:port][/db]
rest="${url#*://}"
scheme="${url%%://*}"
userinfo=""
if [[ "$rest" == *@* ]]; then
  userinfo="${rest%@*}"
  rest="${rest##*@}"
fi
hostport="${rest%%/*}"
host="${hostport%:*}"
port="${hostport##*:}"
[[ "$hostport" == *:* ]] || { host="$hostport"; port=6379; }
password=""
[[ "$userinfo" == *:* ]] && password="${userinfo#*:}"

ping_args=(-h "$host" -p "$port")
[[ -n "$password" ]] && ping_args+=(--no-auth-warning -a "$password")
[[ "$scheme" == rediss ]] && ping_args+=(--tls)

if redis-cli "${ping_args[@]}" ping 2>/dev/null | grep -q PONG; then
  echo "run: using the Redis already answering at $shown"
else
  case "$host" in
    127.0.0.1 | localhost | ::1 | "[::1]") ;;
    *)
      echo "run: no Redis answers at $shown, and it is not on this machine, so it cannot be started here." >&2
      echo "run: start it, or set TIDINGS_REDIS_URL to a Redis that runs (default redis://127.0.0.1:6379)." >&2
      exit 3
      ;;
  esac
  if [[ "$scheme" == rediss ]]; then
    echo "run: no Redis answers at $shown; this script starts only plain redis:// servers." >&2
    exit 3
  fi
  echo "run: no Redis at $shown; starting a private redis-server on port $port (data kept nowhere)"
  server_args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" --loglevel warning)
  [[ -n "$password" ]] && server_args+=(--requirepass "$password")
  redis-server "${server_args[@]}" >"$workdir/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 100); do
    redis-cli "${ping_args[@]}" ping 2>/dev/null | grep -q PONG && break
    if ! kill -0 "$redis_pid" 2>/dev/null; then
      echo "run: redis-server did not start:" >&2
      cat "$workdir/redis.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "run: redis-server is up (pid $redis_pid)"
fi

"$tidings" demo "$@" >"$workdir/demo.log" 2>&1 &
demo_pid=$!
echo "run: demo publishing in the background (pid $demo_pid); tail below. Ctrl-C to stop."
echo

# In the foreground, so Ctrl-C reaches it and it exits cleanly.
set +e
"$tidings" tail
set -e
