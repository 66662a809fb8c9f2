"""Seed 002's classifiers after image-embed convert-classifiers: `classify` on a real server (the
session's) answers scikit-learn's predict_proba of the same CLIP vector, within 1e-6."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT, encode, photo
from tests.cli.test_convert_classifiers import seed_classifier

pytestmark = pytest.mark.integration
JPEG = encode(photo(), "JPEG")


def test_classify_answers_predict_proba_after_conversion(server, classifiers_dir, tmp_path):
    old = tmp_path / "seed002"
    old.mkdir()
    model = seed_classifier(512, seed=11)
    with open(old / "collection_9002_compatible_classifier.pkl", "wb") as f:
        pickle.dump(model, f, protocol=4)
    (old / "best_models.json").write_text(json.dumps({"9002": "collection_9002_classifier_2025-12-01_101010.pkl"}))
    done = subprocess.run(
        [sys.executable, "-m", "cli", "convert-classifiers", str(old), "--out", str(classifiers_dir), "--i-trust-these-files"],
        cwd=ROOT, env={**os.environ, "IMAGE_EMBED_PROFILE": "tiny"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=server.url, timeout=60) as http:
        vector = http.post("/encode_image", files={"image": ("a.jpg", JPEG)}).json()
        tasks = [{"operation_id": "c", "type": "classify", "params": {"collection_id": 9002}}]
        resp = http.post("/analyze", files={"image": ("a.jpg", JPEG)}, data={"tasks": json.dumps(tasks)})
    assert resp.status_code == 200, resp.text
    result = resp.json()["results"]["c"]
    assert result["status"] == "success", result
    expected = model.predict_proba(np.asarray([vector], np.float32))[0, list(model.classes_).index(True)]
    assert abs(result["data"]["probability"] - expected) < 1e-6
    assert result["data"]["is_in_collection"] == bool(model.predict(np.asarray([vector], np.float32))[0])
