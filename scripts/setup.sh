#!/usr/bin/env bash
# Installs what building and testing Tidings needs on Debian/Ubuntu, and only
# what is missing, so it is quick and safe to run again. Called by
# scripts/test.sh and scripts/run.sh; run it alone to prepare a machine.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages: the Tauri/WebKit build stack, Redis for tests and the run
# command, Xvfb + D-Bus + WebKitWebDriver for the desktop end-to-end tests,
# Chromium for the UI browser tests (with CJK fonts, so zh-CN renders as text, not boxes).
packages=(
  build-essential pkg-config curl file
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  redis-server redis-tools xvfb xauth dbus dbus-x11 webkit2gtk-driver chromium fonts-noto-cjk
  nodejs npm
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node and npm may come from elsewhere (nvm, NodeSource); do not fight them.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for package in "${missing[@]}"; do
    [[ "$package" == nodejs || "$package" == npm ]] || filtered+=("$package")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The redis-server package starts a system service on :6379 on some
# distributions; tests start their own on free ports and do not need it.

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is not installed; install Rust from your distribution or rustup, then run this again" >&2
  exit 1
fi

echo "setup: ok ($here)"
