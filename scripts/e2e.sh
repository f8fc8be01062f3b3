#!/usr/bin/env bash
# Desktop end-to-end tests: builds the UI, the app (serving its bundled UI),
# the gateway and the tests, then runs crates/tidings-e2e's tests. Each test
# starts its own Xvfb, D-Bus session bus + notification sink, redis-server,
# gateway and app (through tauri-driver + WebKitWebDriver), and stops them.
# Screenshots and logs land in test-artifacts/e2e/<test>/.
#
#   scripts/e2e.sh                 build, then run every end-to-end test
#   scripts/e2e.sh NAME_FILTER     only the tests whose name contains it
#   scripts/e2e.sh --measure [ARGS]  build in release, then measure start-up,
#                                  latency and idle memory (docs/desktop.md);
#                                  ARGS go to tidings-e2e-measure (--gpu, --rate…);
#                                  the first release build (fat LTO) takes
#                                  ~25 min on 2 cores, a rebuild ~6
#
# Respects CARGO_TARGET_DIR. TIDINGS_E2E_JOBS sets how many tests run at
# once (default 2: each runs a whole WebKit app).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

measure=0
filter=()
for arg in "$@"; do
  case "$arg" in
    --measure) measure=1 ;;
    -h | --help)
      sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) filter+=("$arg") ;;
  esac
done

bash scripts/setup.sh

# tauri-driver speaks WebDriver to the test and drives WebKitWebDriver.
if ! command -v tauri-driver >/dev/null && [[ ! -x "$HOME/.cargo/bin/tauri-driver" ]]; then
  echo "e2e: installing tauri-driver (cargo install tauri-driver --locked)"
  cargo install tauri-driver --locked
fi
tauri_driver="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"

# The UI the app embeds. `npm ci` only when the installed modules are older
# than the lock file; a build only when a source is newer than the last
# build (rebuilding rewrites ui/dist, which makes cargo rebuild the app).
if [[ ! -f ui/node_modules/.package-lock.json || ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
  (cd ui && npm ci --no-audit --no-fund)
fi
if [[ ! -f ui/dist/index.html ]] ||
  [[ -n "$(find ui/src ui/index.html ui/vite.config.ts ui/package-lock.json -newer ui/dist/index.html -print -quit)" ]]; then
  (cd ui && npm run build)
fi
if [[ ! -f ui/dist/index.html ]]; then
  echo "e2e: the UI build did not produce ui/dist/index.html" >&2
  exit 1
fi

target="${CARGO_TARGET_DIR:-$here/target}"
profile_flag=()
profile_dir=debug
if ((measure)); then
  profile_flag=(--release)
  profile_dir=release
fi

echo "e2e: building the app (custom-protocol: serves ui/dist), the gateway, the tidings command and the tests"
if ((measure)); then
  cargo build --release --locked -p tidings-desk-app --features custom-protocol
  cargo build --release --locked -p tidings-gateway -p tidings-cli -p tidings-e2e --bins
else
  # The same workspace, targets and features as scripts/test.sh's test run,
  # so after it this builds nothing (a per-package build would resolve other
  # features and rebuild Tauri).
  cargo build --workspace --bins --tests --locked --features tidings-desk-app/custom-protocol
fi

export TIDINGS_E2E_APP="$target/$profile_dir/tidings-desk"
export TIDINGS_E2E_GATEWAY="$target/$profile_dir/tidings-gateway"
export TIDINGS_E2E_TIDINGS="$target/$profile_dir/tidings"
export TIDINGS_E2E_TAURI_DRIVER="$tauri_driver"
export TIDINGS_E2E_ARTIFACTS="$here/test-artifacts/e2e"
mkdir -p "$TIDINGS_E2E_ARTIFACTS"

if ((measure)); then
  exec "$target/release/tidings-e2e-measure" --out "$TIDINGS_E2E_ARTIFACTS/measurements.txt" "${filter[@]+"${filter[@]}"}"
fi

echo "e2e: running the desktop end-to-end tests (artifacts in test-artifacts/e2e/)"
# The end-to-end tests are the workspace's only #[ignore]d tests. Run with
# the build's own workspace and features, so nothing is rebuilt.
workspace=(--workspace --locked --features tidings-desk-app/custom-protocol)
if cargo nextest --version >/dev/null 2>&1; then
  expression="package(tidings-e2e)"
  if ((${#filter[@]})); then
    names=()
    for name in "${filter[@]}"; do names+=("test(~$name)"); done
    expression+=" & ($(IFS='|'; echo "${names[*]}"))"
  fi
  cargo nextest run "${workspace[@]}" --run-ignored only -E "$expression" \
    --test-threads="${TIDINGS_E2E_JOBS:-2}" --no-fail-fast
else
  cargo test "${workspace[@]}" -- --ignored --test-threads="${TIDINGS_E2E_JOBS:-2}" "${filter[@]+"${filter[@]}"}"
fi
