"""image-embed index-folder without a server: walking, keys, the failures file, arguments."""

from __future__ import annotations

import pytest

from cli.index_folder import Summary, parse_args, read_failures, walk, write_failures


def test_walk_finds_images_recursively_with_relative_keys(tmp_path):
    for rel in ["b.JPG", "a.png", "sub/c.webp", "sub/deeper/d.gif", "notes.txt", "sub/e.tiff", "x.bmp"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * len(rel))
    entries = walk(tmp_path)
    assert [e.key for e in entries] == ["a.png", "b.JPG", "x.bmp", "sub/c.webp", "sub/deeper/d.gif"]
    assert entries[0].size == len("a.png") and entries[0].path == tmp_path / "a.png"
    assert [e.key for e in walk(tmp_path, "photos:")][:1] == ["photos:a.png"]
    assert entries[0].metadata == {"size": entries[0].size, "mtime": entries[0].mtime}


def test_failures_file_round_trip(tmp_path):
    path = tmp_path / "failures.jsonl"
    assert read_failures(path) == []
    rows = [{"key": "a", "path": "/x/a", "error": "corrupt_image", "detail": "bad"}]
    write_failures(path, rows)
    assert read_failures(path) == rows
    write_failures(path, [])
    assert read_failures(path) == []


def test_summary_line():
    s = Summary(found=10, skipped=3, indexed=6, failed=1, elapsed_s=2.0, failures_file="f.jsonl")
    assert s.line() == "indexed 6, skipped 3 (already indexed), failed 1 (see f.jsonl); 10 images found, 2.0 s, 3.0 images/s"
    s.interrupted = True
    assert s.line().startswith("interrupted: ") and "run the same command again" in s.line()


def test_arguments(tmp_path):
    args = parse_args([str(tmp_path)])
    assert (args.index, args.batch_size, args.concurrency, args.url) == ("default", 16, 4, "http://localhost:3000")
    with pytest.raises(SystemExit):
        parse_args([str(tmp_path), "--batch-size", "65"])
