"""Moving in with a model store an older version wrote: `bentoml serve` refuses with the command
that fixes it, that command completes the store offline from the weights already there (no
network: every connection of its process fails), in one line, and then the same server starts
and serves CLIP on ONNX Runtime: texts, images, /rank, /health."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT, encode, photo
from tests.integration.conftest import BENTOML, free_port, server_env, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Loaded first by every Python of the import: a connection or a name look-up fails.
NO_NETWORK = """
import socket

def refuse(*args, **kwargs):
    raise OSError("no network for import_models in this test")

socket.socket.connect = socket.socket.connect_ex = socket.getaddrinfo = refuse
"""


def test_an_older_store_is_refused_with_the_command_that_completes_it_offline(tmp_path):
    home = tmp_path / "home"
    env = server_env(BENTOML_HOME=str(home))
    made = subprocess.run([sys.executable, "-m", "tests.models.old_store", "clip"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]

    refused = subprocess.run([BENTOML, "serve", ".", "--arg", "models=clip", "--port", str(free_port())], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    message = re.search(r"model 'clip' is in the model store without the files of its ONNX engine.*", refused.stderr)
    assert message, refused.stderr[-3000:]
    command = re.search(r"`([^`]+)` adds them offline", message.group()).group(1)
    assert command == "image-embed import-models --profile tiny --models clip"

    (tmp_path / "guard").mkdir()
    (tmp_path / "guard" / "sitecustomize.py").write_text(NO_NETWORK)
    argv = [sys.executable, "-m", "cli", *shlex.split(command)[1:]]  # the command, as .venv/bin/image-embed runs it
    done = subprocess.run(argv, cwd=ROOT, env={**env, "PYTHONPATH": str(tmp_path / "guard")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.strip() for line in done.stderr.replace("\r", "\n").splitlines() if "completed offline" in line]
    assert len(lines) == 1 and "added text_tokenizer.json.gz, logit_scale.json, the ONNX entry" in lines[0], lines

    server = start_server(args=("--arg", "models=clip"), BENTOML_HOME=str(home))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.post("/encode_texts", json={"texts": ["a cat"]}).status_code == 200
            jpeg = encode(photo(), "JPEG")
            assert http.post("/encode_image", files={"image": ("a.jpg", jpeg)}).status_code == 200
            ranked = http.post("/rank", files={"image": ("a.jpg", jpeg)}, data={"texts": json.dumps(["a", "b"])})
            assert ranked.status_code == 200 and ranked.json()["logit_scale"] == pytest.approx(1 / 0.07), ranked.text
            assert http.get("/health").json()["models"]["clip"]["engine"] == "onnx"
    finally:
        server.stop()
