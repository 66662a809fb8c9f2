#!/usr/bin/env bash
# Creates the virtual environment at .venv (repository root) and installs the project's
# dependencies into it. Idempotent: a stamp keyed on the requirement files skips the work
# when nothing changed, so `make serve` / `make test` stay fast after the first run.
#
#   scripts/install.sh          runtime dependencies (what `bentoml serve` needs)
#   scripts/install.sh --test   runtime + test dependencies, and Chromium for the UI tests
#
# Then the project itself, editable (`pip install --no-deps -e .`): the `image-embed` command
# (.venv/bin/image-embed) runs this checkout's code.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=runtime
[ "${1:-}" = "--test" ] && mode=test

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
if ! "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "error: Python 3.10 or newer is required (found $("$python_bin" --version 2>&1))." >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
# The UI tests' browser (apt; silent when installed): checked on every run, as the stamp
# below covers only the Python packages.
if [ "$mode" = test ]; then scripts/install_browser.sh; fi

files=(constraints.txt requirements.txt requirements-lean.txt requirements-nodeps.txt pyproject.toml)
[ "$mode" = test ] && files+=(requirements-test.txt)
stamp=".venv/.installed-$mode-$(cat "${files[@]}" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

pip=(.venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt)
reqs=(-r requirements.txt)
[ "$mode" = test ] && reqs+=(-r requirements-test.txt)
echo "Installing $mode dependencies into .venv (first run takes a few minutes)..."
"${pip[@]}" "${reqs[@]}"
"${pip[@]}" --no-deps -r requirements-nodeps.txt
.venv/bin/python -m pip install --disable-pip-version-check --quiet --no-deps -e .
touch "$stamp"
