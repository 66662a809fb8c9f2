"""image-embed import-library against a real server: a small library on disk (images, an
embeddings.npy computed through the server, paths.txt) whose rows are shifted after a point,
as seed 003's broken range was. The tool finds the break by bisection, refuses the whole
range, imports the aligned part with --accept-range (labels and thumbnails too, a missing
file reported), search finds those items, and a rerun is a no-op.

Under the tiny profile's random weights two different images can reach a cosine of 0.93, so
a shifted row could pass the 0.95 test by chance. The library is chosen so that it cannot:
its images are picked from 160 solid colours so that neighbours in the file are far apart,
and the test measures every shifted row's cosine against its own image (all below 0.9)."""

from __future__ import annotations

import csv
import json
import uuid

import httpx
import numpy as np
import pytest
from PIL import Image

from cli.import_library import main
from tests.conftest import encode

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 40
BREAK = 24  # rows BREAK.. hold the vector of the next image
MISSING_ROW = 5


def embed(http, images: list[bytes]) -> np.ndarray:
    out = []
    for start in range(0, len(images), 32):
        files = [("images", (f"{i}.png", b, "image/png")) for i, b in enumerate(images[start : start + 32])]
        out += [r["embedding"] for r in http.post("/encode_images", files=files).json()["results"]]
    v = np.asarray(out, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def far_apart_chain(vectors: np.ndarray, n: int) -> list[int]:
    """n candidates in an order where each is as far as can be from the one before."""
    chain, unused = [0], set(range(1, len(vectors)))
    while len(chain) < n:
        last = vectors[chain[-1]]
        # among those not too close to any chosen one (search must tell them apart)...
        ok = [c for c in unused if np.max(vectors[chain] @ vectors[c]) < 0.999]
        nxt = min(ok, key=lambda c: float(vectors[c] @ last))  # ...the farthest from the last
        chain.append(nxt)
        unused.discard(nxt)
    return chain


@pytest.fixture(scope="module")
def library(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    rng = np.random.default_rng(7)
    colours = rng.integers(0, 256, (160, 3))
    candidates = [encode(Image.new("RGB", (64, 64), tuple(int(x) for x in c)), "PNG") for c in colours]
    with httpx.Client(base_url=server.url, timeout=120) as http:
        vectors = embed(http, candidates)
    chain = far_apart_chain(vectors, N)
    true = vectors[chain]
    stored = true.copy()
    stored[BREAK:-1] = true[BREAK + 1 :]  # the shift
    stored[-1] = true[BREAK]
    shifted = np.sum(true[BREAK:] * stored[BREAK:], axis=1)
    assert shifted.max() < 0.9, f"a shifted row would pass the 0.95 test by chance: {shifted.max():.3f}"
    assert np.sum(true[:BREAK] * stored[:BREAK], axis=1).min() > 0.9999
    paths = [f"dir{i % 3}/img {i:02d}.png" for i in range(N)]  # a space, as in "My Book"
    for i, p in enumerate(paths):
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_bytes(candidates[chain[i]])
    (root / paths[MISSING_ROW]).unlink()
    np.save(root / "embeddings.npy", stored * 3)  # not normalized: the server does it
    (root / "paths.txt").write_text("".join(p + "\n" for p in paths))
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "rating", "tags"])
        w.writerow([paths[1], 5, "kept;beach"])
        w.writerow([paths[2], "", "beach"])
        w.writerow([paths[30], 4, "shifted"])  # beyond the break: never imported
    return root, paths, shifted


def run(root, server, index, *extra) -> tuple[int, dict]:
    argv = ["--embeddings", str(root / "embeddings.npy"), "--paths", str(root / "paths.txt"), "--root", str(root),
            "--url", server.url, "--index", index, "--samples", "8", "--quiet", "--missing", str(root / "missing.txt"), *extra]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, json.loads(out.getvalue())


def test_finds_the_break_refuses_then_imports_the_aligned_part(server, library):
    root, paths, shifted = library
    index = f"imported-{uuid.uuid4().hex[:8]}"
    code, report = run(root, server, index)
    assert code == 2 and "refused" in report
    assert report["alignment"]["aligned_until"] == BREAK  # precision 1: the exact row
    assert report["alignment"]["summary"] == f"rows 0-{BREAK - 1} aligned; misaligned from about row {BREAK}"
    failing = [s["cosine"] for s in report["alignment"]["samples"] if s["row"] >= BREAK]
    assert failing and max(failing) < 0.9
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/browse", params={"index": index}).status_code == 404  # nothing was written

        code, report = run(root, server, index, "--accept-range", "--labels", str(root / "labels.csv"), "--thumbnails")
        assert code == 0, report
        assert report["imported_rows"] == [0, BREAK]
        assert (report["imported"], report["missing_files"], report["already_there"]) == (BREAK - 1, 1, 0)
        assert (root / "missing.txt").read_text() == f"{MISSING_ROW}\t{paths[MISSING_ROW]}\n"

        page = http.get("/browse", params={"index": index, "per_page": 200}).json()
        assert sorted(it["key"] for it in page["items"]) == sorted(p for i, p in enumerate(paths[:BREAK]) if i != MISSING_ROW)
        assert all(it["thumbnail"] for it in page["items"]) and all(it["metadata"]["row"] == paths.index(it["key"]) for it in page["items"])
        got = {it["key"]: it for it in http.post("/get", json={"keys": paths[1:3], "index": index}).json()["items"]}
        assert (got[paths[1]]["rating"], sorted(got[paths[1]]["tags"])) == (5, ["beach", "kept"])
        assert (got[paths[2]]["rating"], got[paths[2]]["tags"]) == (0, ["beach"])
        for row in (0, 7, BREAK - 1):  # search finds them: an image's own key comes first
            hits = http.post("/search_image", files={"image": ("q.png", (root / paths[row]).read_bytes(), "image/png")},
                             data={"index": index, "top_k": "1"}).json()["results"]
            assert hits[0]["key"] == paths[row] and hits[0]["score"] > 0.9999

        code, again = run(root, server, index, "--accept-range", "--labels", str(root / "labels.csv"))
        assert code == 0 and (again["imported"], again["already_there"], again["missing_files"]) == (0, BREAK - 1, 1)
        code, aligned = run(root, server, index, "--rows", f"0:{BREAK}")  # this range verifies whole: no flag needed
        assert code == 0 and aligned["alignment"]["aligned_until"] is None and aligned["imported"] == 0
        assert http.get("/stats", params={"index": index}).json()["count"] == BREAK - 1
