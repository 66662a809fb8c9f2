"""Fuzzing: schemathesis generates requests from the served OpenAPI document and checks that
none gets a 5xx and every response matches the document. Bounded and seeded for CI.

`positive_data_acceptance` is left out: many schema-valid inputs are not acceptable images
(random bytes, a 1x1 PNG) or miss the one-of-three image source, which OpenAPI cannot say.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 40
SEED = 20261121


def test_no_server_errors_and_no_schema_violations(server, tmp_path):
    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(st), "run", f"{server.url}/docs.json",
            "--checks", "all",
            "--exclude-checks", "positive_data_acceptance",
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", str(SEED),
            "--workers", "2",
            "--request-timeout", "60",
            "--report-dir", str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
