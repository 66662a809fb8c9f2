"""image-embed index-folder against a real server, on both back ends: a generated folder, an
interrupted run (Ctrl-C) that a rerun continues without re-embedding, failures and
--retry-failed, then verify_index.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.conftest import ROOT
from tests.search.images import block_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# run from the checkout (cwd=ROOT), as `image-embed index-folder` / `verify-index` would
INDEX_FOLDER = [sys.executable, "-m", "cli", "index-folder"]
VERIFY_INDEX = [sys.executable, "-m", "cli", "verify-index"]
COUNT = 80


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "photos"
    for i in range(COUNT):
        path = root / ["", "2021", "2021/summer"][i % 3] / f"img{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(block_png(10_000 + i))
    (root / "2021" / "broken.jpg").write_bytes(b"not an image")
    (root / "readme.txt").write_text("not an image either")
    return root


def script(server, folder, index, failures, *extra) -> list[str]:
    return [*INDEX_FOLDER, str(folder), "--url", server.url, "--index", index, "--failures", str(failures), "--json", *extra]


def summary_of(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def count(http, index) -> int:
    resp = http.post("/index_stats", json={"index": index})
    return resp.json()["count"] if resp.status_code == 200 else 0


@pytest.fixture(params=["sqlite", "postgresql"])
def either_server(request):
    """The session's server (embedded SQLite) and the one on PostgreSQL: the scripts work on both."""
    return request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")


def test_interrupted_run_resumes_and_failures_retry(either_server, folder, tmp_path):
    server = either_server
    index = f"folder-{uuid.uuid4().hex[:8]}"
    failures = tmp_path / "failures.jsonl"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        # 1. Ctrl-C once a few images are in: the run stops cleanly.
        proc = subprocess.Popen(
            script(server, folder, index, failures, "--batch-size", "1", "--concurrency", "1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while count(http, index) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        first = summary_of(out)
        assert first["interrupted"] and 3 <= first["indexed"] < COUNT and "Traceback" not in err
        assert count(http, index) == first["indexed"]  # everything acknowledged is in

        # 2. The rerun skips what is indexed and finishes; the broken file is a failure.
        out = subprocess.run(script(server, folder, index, failures), cwd=ROOT, capture_output=True, text=True, timeout=300)
        second = summary_of(out.stdout)
        assert out.returncode == 1  # one failure
        assert second["skipped"] == first["indexed"] and second["indexed"] == COUNT - first["indexed"]
        assert second["found"] == COUNT + 1 and second["failed"] == 1
        (failure,) = [json.loads(line) for line in failures.read_text().splitlines()]
        assert failure["key"] == "2021/broken.jpg" and failure["error"] == "unsupported_image_format"
        assert count(http, index) == COUNT

        # 3. Keys are relative paths, each aligned with its own file's vector.
        for i in (0, 41, 79):
            rel = f"{['', '2021/', '2021/summer/'][i % 3]}img{i:03d}.png"
            resp = http.post("/search_image", files={"image": ("q.png", block_png(10_000 + i), "image/png")}, data={"index": index, "top_k": "1"})
            hit = resp.json()["results"][0]
            assert hit["key"] == rel and hit["score"] > 0.9999

        # 4. A fixed file and --retry-failed: only that one is sent.
        (folder / "2021" / "broken.jpg").write_bytes(block_png(99))
        out = subprocess.run(script(server, folder, index, failures, "--retry-failed"), cwd=ROOT, capture_output=True, text=True, timeout=300)
        third = summary_of(out.stdout)
        assert out.returncode == 0 and (third["found"], third["indexed"], third["failed"]) == (1, 1, 0)
        assert failures.read_text() == "" and count(http, index) == COUNT + 1

        # 5. Nothing left to do: everything is skipped, nothing re-embedded.
        out = subprocess.run(script(server, folder, index, failures), cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert summary_of(out.stdout)["skipped"] == COUNT + 1 and summary_of(out.stdout)["indexed"] == 0

        # 6. verify-index sends files of the folder and compares them with their keys' vectors.
        verify = [*VERIFY_INDEX, "--url", server.url, "--index", index, "--folder", str(folder), "--files", "100"]
        out = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, timeout=300)
        report = json.loads(out.stdout)
        assert out.returncode == 0 and report["ok"] and report["checked"] == COUNT + 1, out.stderr
        # A key that holds another image's vector is caught.
        http.post("/index_images", files={"images": ("x.png", block_png(12345), "image/png")}, data={"keys": '["img000.png"]', "index": index})
        out = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, timeout=300)
        report = json.loads(out.stdout)
        assert out.returncode == 1 and [m["key"] for m in report["mismatches"]] == ["img000.png"]


def test_unreachable_server_is_a_clear_error(folder, tmp_path):
    out = subprocess.run(
        [*INDEX_FOLDER, str(folder), "--url", "http://127.0.0.1:9", "--failures", str(tmp_path / "f.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "cannot reach the server" in out.stderr
