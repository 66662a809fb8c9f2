"""The InternViT and seed-000 API methods with in-process stand-ins for the runners: decoding
once, views in one runner call, regrouping per level, and test_extract's two modes."""

from __future__ import annotations

import asyncio
import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest

from config.sections import LevelSettings
from config.settings import SettingsError
from gateway.compat import CompatRoutes, extract_mode_setting
from gateway.images import ImageLoader
from gateway.internvit import InternVitRoutes
from gateway.runner_client import RunnerClient
from models import get_spec
from models.device import CPU
from models.preprocess import prepare_images
from models.store import model_dir
from models.views import combine_levels, prepare_views
from tests.conftest import encode, noise_image, photo

SPEC = get_spec("internvit")
JPEG = encode(photo(), "JPEG")


class RecordingRunner:
    """A runner client whose encode calls run the real tiny model and are recorded."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls: list[tuple[int, ...]] = []

        async def encode_images(batch: np.ndarray) -> np.ndarray:
            self.calls.append(batch.shape)
            return self.model.encode_images(batch)

        self.to_async = SimpleNamespace(encode_images=encode_images)


class Gateway:
    """The service's route modules over a runner client whose InternViT runner is `runner`."""

    def __init__(self, runner, mode: str = "simple", levels: LevelSettings | None = None) -> None:
        self.images = ImageLoader()
        runners = RunnerClient({"internvit": runner}, ["internvit"])
        internvit = InternVitRoutes(runners, self.images, SPEC, levels or LevelSettings())
        self.routes = SimpleNamespace(
            internvit=internvit, compat=CompatRoutes(runners, self.images, None, internvit, mode)
        )


@pytest.fixture(scope="module")
def model(tiny_models):
    from models.timm_vit import InternVitModel

    return InternVitModel(SPEC, model_dir(SPEC), CPU)


def call(api: str, gateway, **kwargs):
    """Run the service's API function (behind BentoML's decorator) on the stand-in gateway."""
    import service

    return asyncio.run(getattr(service.ImageEmbed.inner, api).func(gateway, **kwargs))  # its own or inherited


def test_simple_is_one_image_through_the_runner(model):
    runner = RecordingRunner(model)
    gateway = Gateway(runner)
    vector = call("encode_internvit", gateway, image_base64=base64.b64encode(JPEG).decode())
    assert runner.calls == [(1, 448, 448, 3)]
    from intake.decode import decode_image

    img = decode_image(JPEG, gateway.images.settings).image
    expected = model.encode_images(prepare_images([img], SPEC))[0]
    np.testing.assert_allclose(vector, expected, atol=1e-6)


@pytest.mark.parametrize("tiles", [(2, 2), (1, 3)])
def test_levels_send_all_views_in_one_call_and_regroup_them(model, tiles):
    runner = RecordingRunner(model)
    levels = LevelSettings(internvit_tiles=tiles)
    gateway = Gateway(runner, levels=levels)
    result = call("encode_internvit_levels", gateway, image_base64=base64.b64encode(JPEG).decode())
    assert runner.calls == [(levels.n_views, 448, 448, 3)]
    body = json.loads(result.model_dump_json())
    assert list(body) == ["global", "focused", "tiles", "combined", "boxes"]
    assert len(body["tiles"]) == len(body["boxes"]["tiles"]) == tiles[0] * tiles[1]
    from intake.decode import decode_image

    views, boxes = prepare_views(decode_image(JPEG, gateway.images.settings).image, SPEC, levels)
    expected = combine_levels(model.encode_images(views), levels)
    for name in ("global", "focused", "combined"):
        np.testing.assert_allclose(body[name], expected[name], atol=1e-6)
    np.testing.assert_allclose(body["tiles"], expected["tiles"], atol=1e-6)
    assert body["boxes"]["global"] == list(boxes[0]) and body["boxes"]["focused"] == list(boxes[1])


def test_bad_input_is_a_client_error_before_the_runner(model):
    runner = RecordingRunner(model)
    gateway = Gateway(runner)
    response = call("encode_internvit_levels", gateway)
    assert response.status_code == 400 and json.loads(response.body)["error"] == "missing_image"
    response = call("encode_internvit", gateway, image_base64=base64.b64encode(b"not an image").decode())
    assert response.status_code in (400, 415)
    assert runner.calls == []


@pytest.mark.parametrize("mode", ["simple", "combined"])
def test_test_extract_modes(model, monkeypatch, mode):
    gateway = Gateway(RecordingRunner(model), mode=mode)
    b64 = base64.b64encode(JPEG).decode()
    if mode == "simple":
        expected = call("encode_internvit", gateway, image_base64=b64)
    else:
        expected = json.loads(call("encode_internvit_levels", gateway, image_base64=b64).model_dump_json())["combined"]

    async def read_bytes(ref):  # the URL reaches the intake's fetch as a URL, nothing else
        assert ref.url == "https://images.example/a.jpg" and ref.upload is None and ref.base64 is None
        return JPEG

    monkeypatch.setattr(gateway.images, "read_bytes", read_bytes)
    result = call("test_extract", gateway, url="https://images.example/a.jpg")
    assert result.url == "https://images.example/a.jpg"
    np.testing.assert_allclose(result.embedding, expected, atol=1e-6)


def test_empty_url_is_missing_image(model):
    response = call("test_extract", Gateway(RecordingRunner(model)), url="  ")
    assert response.status_code == 400 and json.loads(response.body)["error"] == "missing_image"


def test_extract_mode_setting(monkeypatch):
    assert extract_mode_setting() == "simple"
    monkeypatch.setenv("IMAGE_EMBED_TEST_EXTRACT", "Combined")
    assert extract_mode_setting() == "combined"
    monkeypatch.setenv("IMAGE_EMBED_TEST_EXTRACT", "levels")
    with pytest.raises(SettingsError, match="IMAGE_EMBED_TEST_EXTRACT='levels'"):
        extract_mode_setting()


def test_noise_is_accepted(model):
    gateway = Gateway(RecordingRunner(model))
    data = encode(noise_image(640, 200, seed=3), "PNG")
    assert len(call("encode_internvit", gateway, image_base64=base64.b64encode(data).decode())) == SPEC.output_dim
