"""The person detector family: tiny detector from the store, wire format, bench architecture,
clear offline failure for the COCO weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import get_spec
from models.detection import MAX_DETECTIONS, from_canvas, prominent_person
from models.device import CPU
from models.hub import WeightsDownloadError
from models.person import CONFIG_FILE, WEIGHTS_FILE, PersonDetector, build, materialize
from models.preprocess import prepare_images
from models.store import model_dir
from tests.conftest import noise_image, photo


@pytest.fixture(scope="module")
def detector(tiny_models):
    spec = get_spec("person", "tiny")
    return PersonDetector(spec, model_dir(spec), CPU)


def test_tiny_store_folder_holds_config_and_safetensors(tiny_models):
    folder = model_dir(get_spec("person", "tiny"))
    assert (folder / WEIGHTS_FILE).is_file()
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["arch"] == "tiny-fasterrcnn" and config["arch_config"]["min_size"] == 160


def test_detect_returns_the_wire_format(detector):
    spec = detector.spec
    batch = prepare_images([photo(), noise_image(300, 500, seed=1)], spec)
    rows = detector.detect(batch)
    assert rows.shape == (2, MAX_DETECTIONS, 5) and rows.dtype == np.float32
    for image_rows in rows:
        scores = image_rows[:, 4]
        assert (np.diff(scores) <= 0).all(), "best first"
        live = image_rows[scores > 0]
        assert (live[:, 2] >= live[:, 0]).all() and (live[:, 3] >= live[:, 1]).all()
        assert (live[:, :4] >= 0).all() and (live[:, :4] <= spec.input_size).all()


def test_tiny_detector_finds_persons_deterministically(detector):
    """Its classifier bias favours "person": the found-person plumbing gets exercised."""
    batch = prepare_images([photo()], detector.spec)
    first, again = detector.detect(batch), detector.detect(batch)
    np.testing.assert_array_equal(first, again)
    person = prominent_person(from_canvas(first[0], (512, 512), detector.spec.input_size))
    assert person is not None and person.score >= 0.5


def test_batch_rows_equal_single_rows(detector):
    images = [photo(), noise_image(640, 480, seed=2)]
    together = detector.detect(prepare_images(images, detector.spec))
    for i, img in enumerate(images):
        alone = detector.detect(prepare_images([img], detector.spec))[0]
        np.testing.assert_allclose(together[i], alone, rtol=1e-4, atol=1e-3)


def test_detect_rejects_a_wrong_batch(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((1, 800, 800, 3), dtype=np.float32))


def test_bench_builds_torchvisions_real_architecture():
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    spec = get_spec("person", "bench")
    ours = build(spec.arch, spec.arch_config)
    reference = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    assert type(ours) is type(reference)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


def test_default_weights_are_torchvisions_coco_enum():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights

    spec = get_spec("person", "default")
    weights = FasterRCNN_ResNet50_FPN_V2_Weights[spec.pretrained]
    assert weights.meta["categories"][1] == "person"


def test_default_import_offline_is_a_clear_error(tmp_path: Path, monkeypatch):
    import models.person as person

    def unreachable(url, what):
        raise WeightsDownloadError(f"cannot download {what}: {url} is unreachable")

    monkeypatch.setattr(person, "ensure_url_reachable", unreachable)
    with pytest.raises(WeightsDownloadError, match="COCO_V1"):
        materialize(get_spec("person", "default"), tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_default_import_path_with_a_stand_in_download(tmp_path, monkeypatch):
    """materialize's pretrained branch, offline: torchvision's COCO weights are stood in for by
    a seeded state dict of the same architecture; the stored folder loads back identically."""
    import torch

    import models.person as person

    spec = get_spec("person", "default")
    torch.manual_seed(1)
    state = build(spec.arch, None).state_dict()
    calls = []

    class StandIn:
        def get_state_dict(self, **kwargs):
            calls.append(kwargs)
            return state

    monkeypatch.setattr(person, "ensure_url_reachable", lambda url, what: calls.append(url))
    monkeypatch.setattr(person, "_weights_enum", lambda arch: {"COCO_V1": StandIn()})
    materialize(spec, tmp_path)
    assert calls == [person.TORCHVISION_DOWNLOADS, {"progress": False, "check_hash": True}]
    loaded = person.load(tmp_path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
