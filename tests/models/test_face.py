"""MTCNN with its real weights (bundled in facenet-pytorch): it finds the astronaut's face."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from models import get_spec
from models.detection import MAX_DETECTIONS, from_canvas, prominent_face
from models.device import CPU
from models.face import CONFIG_FILE, WEIGHTS_FILE, FaceDetector
from models.preprocess import prepare_images
from models.store import model_dir
from tests.conftest import noise_image, photo

# Where the astronaut's face is (MTCNN on the raw 512 x 512 photograph: about 181, 62, 268, 172).
FACE = (181, 62, 268, 172)


@pytest.fixture(scope="module")
def detector(tiny_models):
    spec = get_spec("face", "tiny")
    return FaceDetector(spec, model_dir(spec), CPU)


def faces_in(detector, img: Image.Image, offset=(0, 0)):
    rows = detector.detect(prepare_images([img], detector.spec))[0]
    return from_canvas(rows, img.size, detector.spec.input_size, offset)


def test_store_holds_the_packages_weights(tiny_models):
    from facenet_pytorch import MTCNN
    from safetensors.torch import load_file

    folder = model_dir(get_spec("face", "tiny"))
    stored = load_file(str(folder / WEIGHTS_FILE))
    package = MTCNN(device="cpu").state_dict()
    assert stored.keys() == package.keys()
    for key in stored:
        assert torch.equal(stored[key], package[key]), key
    assert json.loads((folder / CONFIG_FILE).read_text())["settings"]["min_face_size"] == 20


def test_finds_the_one_face_of_the_astronaut(detector):
    faces = faces_in(detector, photo())
    assert len(faces) == 1
    face = prominent_face(faces)
    assert face is not None and face.score > 0.99
    assert all(abs(a - b) <= 6 for a, b in zip(face.box, FACE)), face.box


def test_agrees_with_mtcnn_detect_on_the_raw_image(detector):
    """Through the 640 px letterbox, the box is MTCNN's own on the raw photograph within a few pixels."""
    boxes, probs = detector.mtcnn.detect(photo())
    reference = np.asarray(boxes, dtype=np.float64)[0]
    (ours,) = faces_in(detector, photo())
    np.testing.assert_allclose(ours.box, reference, atol=5)
    assert ours.score == pytest.approx(float(probs[0]), abs=1e-3)


def test_finds_the_face_inside_a_crop_and_maps_it_back(detector):
    crop_box = (100, 0, 400, 300)
    crop = photo().crop(crop_box)
    (face,) = faces_in(detector, crop, offset=crop_box[:2])
    assert all(abs(a - b) <= 6 for a, b in zip(face.box, FACE)), face.box


def test_no_face_in_noise_or_black(detector):
    batch = prepare_images([noise_image(400, 300, seed=5), Image.new("RGB", (64, 64))], detector.spec)
    rows = detector.detect(batch)
    assert rows.shape == (2, MAX_DETECTIONS, 5)
    assert not rows.any()


def test_batch_equals_single(detector):
    images = [photo(), noise_image(300, 300, seed=1), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    together = detector.detect(prepare_images(images, detector.spec))
    for i, img in enumerate(images):
        np.testing.assert_allclose(together[i], detector.detect(prepare_images([img], detector.spec))[0], atol=1e-3)
    assert together[2, 0, 4] > 0.99  # the mirrored face is found too
