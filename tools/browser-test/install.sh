#!/usr/bin/env bash
# Installs what the browser tests need, once: Debian's Chromium (package `chromium`,
# /usr/bin/chromium; Playwright's own browser download is not reachable) and the pinned
# npm packages (playwright-core, axe-core; package-lock.json) into $1/node_modules.
# Called by crates/oxehr/tests/browser.rs; safe to run again (does nothing when done).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: install.sh <directory for node_modules>}"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

mkdir -p "$dest"
if ! cmp -s "$here/package-lock.json" "$dest/package-lock.json" || [ ! -d "$dest/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
