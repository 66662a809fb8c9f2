#!/usr/bin/env bash
# The GPU check, run on the GPU host (docs/gpu.md): installs the wheels of .whl/ (made here by
# scripts/gpu/prepare.sh) without an index, then measures the CUDA path in one run of at most
# 8 minutes, writing check.json and check.md into $OUT (or --out DIR).
#
#   scripts/gpu/check.sh [--out DIR]     # on the GPU host
#   scripts/gpu/check.sh --dry-run       # here: CPU, tiny profile, under 3 minutes (tests run this)
#
# The dry run uses this checkout's .venv, installs nothing and needs no GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."

dry_run=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1; args+=(--dry-run) ;;
    --out) args+=(--out "$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

if [ "$dry_run" = 1 ]; then
  py=${PYTHON:-.venv/bin/python}
  limit=${GPU_CHECK_TIMEOUT_S:-180}
else
  py=${PYTHON:-python3}
  limit=${GPU_CHECK_TIMEOUT_S:-480}
  site=${GPU_CHECK_SITE:-/tmp/gpu-check-site}
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "error: no wheels in .whl/: run scripts/gpu/prepare.sh here first and carry .whl with the repository" >&2
    exit 2
  fi
  echo "Installing $(ls .whl/*.whl | wc -l) wheels into $site ..."
  "$py" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$site/bin:$PATH"
fi
# the whole run is bounded: a hung step ends the check instead of the host's time
exec timeout --kill-after=15 "$limit" "$py" -m scripts.gpu.check "${args[@]}"
