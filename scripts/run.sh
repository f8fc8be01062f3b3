#!/usr/bin/env bash
# The one command that runs Tidings (README: "Run"): a local Redis (only if
# none answers), the gateway, `tidings demo` traffic, and the desktop app
# connected through the gateway as demo user u1 (张伟) with a role profile.
# Ctrl-C (or closing the app from its tray menu) stops everything this
# script started, by PID, and nothing else.
#
#   scripts/run.sh                          # approver profile, 5 events/s
#   TIDINGS_PROFILE=warehouse scripts/run.sh --rate 20 --chaos
#   TIDINGS_REDIS_URL=redis://:pw@127.0.0.1:6380 scripts/run.sh
#   scripts/run.sh --tail                   # no desktop: `tidings tail` instead
#
# Arguments other than --tail go to `tidings demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

url="${TIDINGS_REDIS_URL:-redis://127.0.0.1:6379}"
export TIDINGS_REDIS_URL="$url"
listen="${TIDINGS_LISTEN:-127.0.0.1:8787}"
profile="${TIDINGS_PROFILE:-approver}"
# The URL with any password hidden, for everything this script prints.
shown="$(printf '%s' "$url" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')"

case "$profile" in
  warehouse | approver | ops) ;;
  *)
    echo "run: TIDINGS_PROFILE=$profile is not a profile; use warehouse, approver or ops" >&2
    exit 2
    ;;
esac

tail_only=false
demo_args=()
for argument in "$@"; do
  if [[ "$argument" == --tail ]]; then tail_only=true; else demo_args+=("$argument"); fi
done

if ! $tail_only && [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  cat >&2 <<EOF
run: there is no display here (DISPLAY and WAYLAND_DISPLAY are unset), so the
desktop app cannot open its window. Either
  - run it on a virtual screen:  xvfb-run -a scripts/run.sh
  - or watch the events in this terminal instead:  scripts/run.sh --tail
EOF
  exit 2
fi

cat <<EOF
run: Tidings, the live ERP event feed. This will:
  1. install what is missing (scripts/setup.sh) and build the UI, the
     \`tidings\` command and the desktop app;
  2. use the Redis at $shown if it answers, otherwise start a private
     redis-server there (no persistence, stopped when you press Ctrl-C);
EOF
if $tail_only; then
  cat <<EOF
  3. run \`tidings demo\` in the background ${demo_args[*]:+(demo arguments: ${demo_args[*]})};
  4. run \`tidings tail\` here, one line per event.
EOF
else
  cat <<EOF
  3. start the gateway on $listen with a fresh JWT secret;
  4. run \`tidings demo\` in the background ${demo_args[*]:+(demo arguments: ${demo_args[*]})};
  5. open the desktop app, signed in through the gateway as user u1
     with the $profile profile (approval requests pop up as critical
     notifications). Its settings and history live in a temporary folder.
EOF
fi
echo "Press Ctrl-C to stop everything."
echo

scripts/setup.sh
if $tail_only; then
  echo "run: building the tidings command…"
  cargo build --quiet -p tidings-cli
else
  echo "run: building the UI (ui/dist)…"
  if [[ ! -d ui/node_modules ]]; then (cd ui && npm ci --no-audit --no-fund --loglevel=error); fi
  (cd ui && npm run --silent build >/dev/null)
  echo "run: building the tidings command and the desktop app (the first build takes several minutes)…"
  # The whole workspace with the test run's features: a per-package build
  # resolves other features and would build Tauri a second time.
  cargo build --quiet --workspace --bins --features tidings-desk-app/custom-protocol
fi
target="${CARGO_TARGET_DIR:-$(pwd)/target}"
tidings="$target/debug/tidings"
desk="$target/debug/tidings-desk"

workdir="$(mktemp -d -t tidings-run.XXXXXX)"
redis_pid=""
gateway_pid=""
demo_pid=""

stop() {
  local name="$1" pid="$2"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    echo "run: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}

cleanup() {
  trap - EXIT INT TERM
  stop "the demo" "$demo_pid"
  if [[ -s "$workdir/demo.log" ]]; then
    sed -n '/^demo: [0-9]* events/,$p' "$workdir/demo.log"
  fi
  stop "the gateway" "$gateway_pid"
  stop "the redis-server this script started" "$redis_pid"
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

# Starts `tidings demo` in the background; if it stops at once (a bad
# argument: its arguments are the user's), shows why and stops everything.
start_demo() {
  "$tidings" demo "${demo_args[@]}" >"$workdir/demo.log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 1 10); do
    if ! kill -0 "$demo_pid" 2>/dev/null; then
      echo "run: \`tidings demo ${demo_args[*]}\` stopped at once:" >&2
      cat "$workdir/demo.log" >&2
      demo_pid=""
      exit 2
    fi
    sleep 0.1
  done
}

if $tail_only; then
  start_demo
  echo "run: demo publishing in the background (pid $demo_pid); tail below. Ctrl-C to stop."
  echo
  set +e
  "$tidings" tail
  set -e
  exit 0
fi

# Secrets go through the environment, never the command line (ps shows that).
TIDINGS_JWT_SECRET="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TIDINGS_JWT_SECRET
TIDINGS_LISTEN="$listen" "$tidings" gateway >"$workdir/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://$listen/healthz" >/dev/null 2>&1 && break
  if ! kill -0 "$gateway_pid" 2>/dev/null; then
    echo "run: the gateway did not start (is $listen in use? set TIDINGS_LISTEN):" >&2
    cat "$workdir/gateway.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "run: gateway is up on $listen (pid $gateway_pid; log $workdir/gateway.log)"

start_demo
echo "run: demo publishing in the background (pid $demo_pid)"

TIDINGS_TOKEN="$("$tidings" token --user u1)"
export TIDINGS_TOKEN
# The web example (examples/web, docs/web.md) signs in as u1 with the same token.
(umask 077 && printf '%s\n' "$TIDINGS_TOKEN" >"$workdir/web-token")
echo "run: web example: cd examples/web && npm install && VITE_TIDINGS_URL=ws://$listen/ws VITE_TIDINGS_TOKEN=\$(cat $workdir/web-token) npm run dev"
unset TIDINGS_JWT_SECRET
echo "run: opening the desktop app as u1 with the $profile profile; Ctrl-C here stops everything"
set +e
TIDINGS_CONFIG="$workdir/settings.toml" TIDINGS_DATA_DIR="$workdir/data" \
  "$desk" --gateway "ws://$listen/ws" --user u1 --profile "$profile" --erp-base-url "http://127.0.0.1:3000"
set -e
