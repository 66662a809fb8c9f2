#!/usr/bin/env bash
# Run here, before the GPU check: downloads into .whl/ (git-ignored) the wheels the GPU host lacks,
# for CPython 3.12 on manylinux x86_64, and checks that the repository and the wheels together fit
# the 64 MiB that travel to the host. See docs/gpu.md.
#
#   scripts/gpu/prepare.sh            # then carry .whl with the repository and run scripts/gpu/check.sh there
#
# The list is the closure of what the check imports less what the host has (scripts/gpu/wheels.py),
# pinned to this venv's versions. Needs the registries (PyPI); idempotent (pip skips what is there).
set -euo pipefail
cd "$(dirname "$0")/../.."

LIMIT_MIB=${GPU_BUNDLE_LIMIT_MIB:-64}
PY=${PYTHON:-.venv/bin/python}
DEST=.whl

pins=$("$PY" scripts/gpu/wheels.py)
mkdir -p "$DEST"
echo "Downloading $(wc -l <<<"$pins") wheels for cp312 manylinux x86_64 into $DEST/ ..."
# shellcheck disable=SC2086
"$PY" -m pip download --disable-pip-version-check --quiet --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_34_x86_64 --platform any \
  --dest "$DEST" $pins 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$PY" scripts/gpu/wheels.py --check "$DEST" --limit-mib "$LIMIT_MIB"
