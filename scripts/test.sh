#!/usr/bin/env bash
# The one command that runs every test of Tidings (README: "Test").
# Installs what is missing, then: formatting, the UI's checks and tests,
# lints, every Rust test (unit, property, and integration tests that start
# their own redis-server and gateways), and the desktop end-to-end tests
# (the real app under Xvfb through WebDriver, scripts/e2e.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

# The test command builds each crate once: incremental artefacts would only
# add ~7 GB of disk to a cold run (a full disk once failed CI). Set
# CARGO_INCREMENTAL=1 to keep them between local runs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
free_gb=$(df -Pk . | awk 'NR==2 {print int($4/1048576)}')
if [ "$free_gb" -lt 25 ] && [ ! -d target/debug/deps ]; then
  echo "warning: ${free_gb} GB free here; a cold run needs about 25 GB (target/ and fuzz/target)." >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

# ---- UI (ui/, owner: UI engineer; docs/ui.md) ----
# Before clippy: the Tauri app's build embeds ui/dist. Installs nothing but
# the locked npm packages; Chromium comes from scripts/setup.sh.
step "UI: npm ci"
(cd ui && npm ci --no-audit --no-fund)
step "UI: format and lint (Biome; 'npm run format' fixes the layout)"
(cd ui && npm run lint)
step "UI: typecheck (tsc, strict)"
(cd ui && npm run typecheck)
step "UI: production build"
(cd ui && npm run build)
step "UI: bundle size (fails over 150 KB gzipped)"
(cd ui && npm run size)
step "UI: unit tests (Vitest)"
(cd ui && npm test)
step "UI: browser tests (Chromium, IPC mocked)"
(cd ui && npm run test:browser)
# ---- end UI ----

# ---- Web client and publisher (clients/js; docs/web.md) ----
# The locked npm packages only; builds copy the event types from
# ui/src/bindings and the append script from crates/tidings.
step "clients/js: npm ci"
(cd clients/js && npm ci --no-audit --no-fund)
step "clients/js: build, typecheck (tsc, strict)"
(cd clients/js && npm run build && npm run typecheck)
step "clients/js: bundle size (@tidings/client fails over 6 KB gzipped)"
(cd clients/js && npm run size)
step "examples/web: npm ci, typecheck and build (the browser tests run it)"
(cd examples/web && npm ci --no-audit --no-fund && npm run build)
# ---- end clients/js (its tests run after the Rust tests, on their binaries) ----

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Broken intra-doc links and malformed docs fail like lints do.
step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --lib --no-deps --locked

# Test support stays out of the shipped app: the desktop app alone (as
# `cargo build -p tidings-desk-app` resolves it) must not turn on
# tidings-notify's `sink` (the stand-in daemon) or tidings-desk's hooks.
step "The app links no test support"
app_features=$(cargo tree -p tidings-desk-app -e features,normal --locked --prefix none)
if grep -E '^tidings-(notify|desk) feature "(sink|test-hooks)"' <<<"$app_features"; then
  echo "error: the desktop app turns on the test support above; only tests and tools may" >&2
  exit 1
fi

# The app is built serving its bundled UI (custom-protocol), as the
# end-to-end tests need it: one feature set for both, so Tauri is built once.
step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --features tidings-desk-app/custom-protocol
else
  cargo test --workspace --locked --no-fail-fast --features tidings-desk-app/custom-protocol
fi

# Against the binaries the Rust tests just built: a real redis-server, the
# gateway, `tidings record`/`tail`/`publish`, and Chromium for the hooks.
step "clients/js: tests (publisher, Rust<->TypeScript contract, client against the gateway)"
cargo build -p tidings-gateway -p tidings-cli --bins --locked
(cd clients/js && npm test)
step "clients/js: browser tests (hooks in Chromium, real gateway and Redis)"
(cd clients/js && npm run test:browser)

# A few seconds of fuzzing per parser that reads what the network sent: the
# Redis source's RESP reader, the event decoder, the gateway's client-frame
# parser. A crash fails the run (libFuzzer exits non-zero and leaves the
# input in fuzz/artifacts/). Longer runs: see each fuzz/Cargo.toml.
step "Fuzz (5 s per target)"
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
(cd crates/tidings && RUSTC_BOOTSTRAP=1 cargo fuzz run resp -- -max_total_time=5)
(cd crates/tidings-events && RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time=5)
(cd crates/tidings-events && RUSTC_BOOTSTRAP=1 cargo fuzz run client_frame -- -max_total_time=5)

step "Desktop end-to-end tests (real app, WebKitWebDriver, Xvfb, D-Bus)"
scripts/e2e.sh

step "Disk used by the build: $(du -sh target 2>/dev/null | cut -f1) in target/, $(du -sh fuzz/target crates/*/fuzz/target 2>/dev/null | awk '{print $1}' | paste -sd+ -) in fuzz targets"
