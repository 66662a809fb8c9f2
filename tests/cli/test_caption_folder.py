"""image-embed caption-folder against a real server: captions beside images, skips, failures."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import encode, noise_image


@pytest.fixture(scope="module")
def script():
    module = importlib.import_module("cli.caption_folder")
    yield module


def test_usage_errors(script, tmp_path, capsys):
    assert script.main([str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(tmp_path), "--concurrency", "0"])


def test_an_unreachable_server_fails_every_image_and_says_so(script, tmp_path, capsys):
    from tests.integration.conftest import free_port

    (tmp_path / "a.png").write_bytes(encode(noise_image(32, 32), "PNG"))
    assert script.main([str(tmp_path), "--server", f"http://127.0.0.1:{free_port()}", "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert "done: 0 captioned, 0 skipped, 1 failed" in captured.out and "failed: a.png: ConnectError" in captured.err
    assert not (tmp_path / "a.txt").exists()
