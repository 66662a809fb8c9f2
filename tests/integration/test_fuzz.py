"""Fuzzing: schemathesis generates requests from the served OpenAPI document and checks that
none gets a 5xx and every response matches the document (`--checks all` includes
response_schema_conformance). Bounded and seeded for CI.

The default index holds a few vectors while it runs, so that the index APIs answer 200 and
their answers are checked too (an index of vectors brought in has nothing to re-embed: a
/verify_index answer with "min_cosine": null, which the document must allow).

`positive_data_acceptance` is left out: many schema-valid inputs are not acceptable images
(random bytes, a 1x1 PNG) or miss the one-of-three image source, which OpenAPI cannot say.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 40
SEED = 20261121


@pytest.fixture
def default_index(server):
    """The default index with a few vectors (and no image to fetch again), dropped afterwards
    unless it was there before."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        existed = client.post("/index_stats", json={}).status_code == 200
        vectors = np.random.default_rng(SEED).normal(size=(3, 512))
        keys = [f"fuzz-{i}" for i in range(len(vectors))]
        resp = client.post("/index_vectors", json={"keys": keys, "vectors": vectors.tolist()})
        assert resp.status_code == 200, resp.text
        answer = client.post("/verify_index", json={"sample": 0})
        assert answer.status_code == 200 and answer.json()["min_cosine"] is None, answer.text
        yield
        if existed:
            client.post("/delete", json={"keys": keys})
        else:
            client.post("/drop_index", json={"index": "default"})


def test_no_server_errors_and_no_schema_violations(server, default_index, tmp_path):
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
