"""`image-embed` end to end against a real `bentoml serve` (the session's tiny-profile server):
index-folder indexes a generated folder, then search-text, search-image and stats read it back,
as a user would type them; an error answer from the server is exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, encode, noise_image

pytestmark = pytest.mark.integration
COUNT = 12
INDEX = "cli_end_to_end"


def image_embed(*args: str) -> subprocess.CompletedProcess:
    """The command as `python -m cli` from this checkout (the console script runs the same app)."""
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def indexed(server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-photos")
    for i in range(COUNT):
        path = folder / ("albums" if i % 2 else "") / f"img{i:02d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode(noise_image(96, 64, seed=100 + i)))
    done = image_embed("index-folder", str(folder), "--url", server.url, "--index", INDEX, "--quiet", "--json",
                       "--failures", str(folder.parent / "failures.jsonl"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["found"], summary["indexed"], summary["failed"]) == (COUNT, COUNT, 0)
    return folder


def test_search_text_lists_the_best_hits(server, indexed):
    done = image_embed("search-text", "a photo of a dog", "--url", server.url, "--index", INDEX, "--top-k", "5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"5 result(s) in index '{INDEX}'"
    keys = {p.relative_to(indexed).as_posix() for p in indexed.rglob("*.jpg")}
    scores = []
    for rank, line in enumerate(lines[1:], 1):
        got_rank, score, key = line.split(maxsplit=2)
        assert int(got_rank) == rank and key in keys
        scores.append(float(score))
    assert scores == sorted(scores, reverse=True)


def test_search_image_finds_the_image_itself_first(server, indexed):
    query = indexed / "albums" / "img03.jpg"
    done = image_embed("search-image", str(query), "--url", server.url, "--index", INDEX, "--top-k", "3", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) == 3 and results[0]["key"] == "albums/img03.jpg" and results[0]["score"] > 0.999


def test_stats_counts_the_folder(server, indexed):
    done = image_embed("stats", "--url", server.url, "--index", INDEX)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(maxsplit=1) for line in done.stdout.splitlines())
    assert fields["index"] == INDEX and fields["count"] == str(COUNT) and fields["dimension"] == "512"
    assert fields["backend"] == "sqlite"
    as_json = json.loads(image_embed("stats", "--url", server.url, "--index", INDEX, "--json").stdout)
    assert as_json["count"] == COUNT and as_json["model"] == fields["model"]


def test_an_error_answer_is_exit_1_with_the_servers_reason(server):
    done = image_embed("search-text", "anything", "--url", server.url, "--index", "no_such_index")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: the server answered 404 index_not_found"), done.stderr
