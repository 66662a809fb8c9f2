"""The analysis scripts against a real server: image-embed caption-folder captions a folder,
image-embed train-classifiers embeds image folders through /encode_images."""

from __future__ import annotations

import importlib
import json
import os

import pytest

from gateway.analyze.classifiers import INDEX_FILE, ClassifierStore
from models import get_spec
from tests.conftest import encode, noise_image, photo

pytestmark = pytest.mark.integration


def load(name: str):
    module = importlib.import_module(f"cli.{name}")
    return module


def test_caption_folder(server, tmp_path, capsys):
    script = load("caption_folder")
    images = {"astronaut.jpg": encode(photo(), "JPEG"), "noise.png": encode(noise_image(200, 150, seed=3), "PNG"),
              "other.webp": encode(noise_image(64, 64, seed=4), "WEBP"), "done.bmp": encode(noise_image(40, 40), "BMP")}
    for name, data in images.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "broken.jpg").write_bytes(b"not an image at all")
    (tmp_path / "notes.md").write_text("not an image: ignored")
    (tmp_path / "done.txt").write_text("an existing caption\n")

    args = [str(tmp_path), "--server", server.url, "--concurrency", "3", "--max-length", "12"]
    assert script.main(args) == 1
    captured = capsys.readouterr()
    assert "3 captioned, 1 skipped, 1 failed" in captured.out
    assert "failed: broken.jpg: HTTP 415" in captured.err
    for name in ("astronaut", "noise", "other"):
        text = (tmp_path / f"{name}.txt").read_text()
        assert text.endswith("\n") and text.strip() and len(text.split()) <= 11
    assert (tmp_path / "done.txt").read_text() == "an existing caption\n"
    assert not (tmp_path / "broken.txt").exists() and not (tmp_path / "notes.txt").exists()

    (tmp_path / "broken.jpg").unlink()
    assert script.main([*args, "--force"]) == 0
    assert "4 captioned, 0 skipped, 0 failed" in capsys.readouterr().out
    assert (tmp_path / "done.txt").read_text() != "an existing caption\n"


def test_train_classifiers_on_image_folders(server, tmp_path):
    script = load("train_classifiers")
    data, out = tmp_path / "data", tmp_path / "out"
    for label, seeds in (("positive", range(0, 6)), ("negative", range(100, 112))):
        folder = data / "31" / label
        folder.mkdir(parents=True)
        for s in seeds:
            (folder / f"img{s}.png").write_bytes(encode(noise_image(64, 48, seed=s), "PNG"))
    (data / "31" / "negative" / "broken.jpg").write_bytes(b"not an image")
    assert script.main(["--data", str(data), "--out", str(out), "--server", server.url]) == 0
    entry = json.loads((out / INDEX_FILE).read_text())["collections"]["31"]
    assert entry["embedding_model"] == get_spec("clip").store_tag
    clf = ClassifierStore(out).get("31")
    assert clf.coef.shape == (512,) and clf.metadata["n_train"] + clf.metadata["n_test"] == 18
    assert os.path.basename(clf.metadata["source"]) == "31"


def test_bench_analyze_against_a_running_server(server, tmp_path):
    script = importlib.import_module("bench.analyze")
    args = script.parse_args(["--url", server.url, "--requests", "3", "--concurrency", "1", "2", "--warmup", "0"])
    result = script.run(args)
    assert result["profile"] == "tiny" and [lv["concurrency"] for lv in result["levels"]] == [1, 2]
    for lv in result["levels"]:
        assert lv["ok"] == lv["complete"] == 3 and lv["statuses"] == {"200": 3} and lv["requests_per_s"] > 0
        assert lv["task_errors"] == {}
        assert lv["p50_ms"] <= lv["p99_ms"]
        assert sum(lv["tasks"].values()) == 12 and lv["tasks"]["clip_face:success"] == 3
    out = tmp_path / "bench.json"
    assert script.main(["--url", server.url, "--requests", "1", "--concurrency", "1", "--warmup", "0", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["levels"][0]["ok"] == 1
