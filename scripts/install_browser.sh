#!/usr/bin/env bash
# The browser of the UI tests (tests/gateway/ui/): Debian's chromium and chromium-driver.
# Idempotent and silent when both are installed; otherwise `apt-get update` and install them
# (as root, or through sudo). Called by `scripts/install.sh --test`.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get here: install Chromium and its chromedriver to run the UI tests" >&2
  exit 0
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); else
    echo "warning: not root and no sudo: install chromium and chromium-driver to run the UI tests" >&2
    exit 0
  fi
fi
echo "Installing chromium and chromium-driver (apt) for the UI tests..."
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
