"""InternViT over HTTP (tiny profile): parity of both extractors with timm on the server's own
weights, input forms, errors, and views of concurrent requests batched together."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode, noise_image, photo
from tests.integration.metrics import batch_stats

pytestmark = pytest.mark.integration
TOLERANCE = 1e-5
JPEG = encode(photo(), "JPEG", quality=90)
LANDSCAPE = encode(photo().resize((640, 360)), "PNG")


@pytest.fixture(scope="module")
def reference():
    """timm's own model and eval transform on the server's stored weights."""
    import timm
    import torch

    from models import get_spec
    from models.store import model_dir
    from models.timm_vit import CONFIG_FILE, WEIGHTS_FILE

    folder = model_dir(get_spec("internvit"))
    config = json.loads((folder / CONFIG_FILE).read_text())
    model = timm.create_model(
        config["architecture"],
        pretrained=True,
        pretrained_cfg_overlay={**config["pretrained_cfg"], "file": str(folder / WEIGHTS_FILE)},
        **config["model_args"],
    ).eval()
    data_config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**data_config)
    normalize = timm.data.create_transform(**{**data_config, "crop_pct": 1.0})

    def vector(x: "torch.Tensor") -> np.ndarray:
        with torch.no_grad():
            tokens = model.forward_features(x[None])
        return torch.nn.functional.normalize(tokens[:, model.num_prefix_tokens :].mean(1), dim=-1)[0].numpy()

    def simple(data: bytes) -> np.ndarray:
        return vector(transform(Image.open(io.BytesIO(data)).convert("RGB")))

    def view(data: bytes, box: list[int]) -> np.ndarray:
        from torchvision import transforms as T

        crop = Image.open(io.BytesIO(data)).convert("RGB").crop(tuple(box))
        resized = T.Resize((448, 448), interpolation=T.InterpolationMode.BICUBIC)(crop)
        return vector(normalize(resized))  # 448 x 448 already: timm's resize + crop are no-ops

    return simple, view


def upload(data: bytes) -> dict:
    return {"image": ("img", data, "application/octet-stream")}


@pytest.mark.parametrize("data", [JPEG, LANDSCAPE, encode(noise_image(180, 500, seed=7), "PNG")], ids=["jpeg", "landscape", "portrait"])
def test_simple_extractor_parity(http, reference, data):
    resp = http.post("/encode_internvit", files=upload(data))
    assert resp.status_code == 200, resp.text
    ours = np.asarray(resp.json(), dtype=np.float32)
    assert abs(np.linalg.norm(ours) - 1) < 1e-5
    assert np.abs(ours - reference[0](data)).max() < TOLERANCE


@pytest.mark.parametrize("data", [JPEG, LANDSCAPE], ids=["square", "landscape"])
def test_each_level_equals_timm_on_that_view(http, reference, data):
    resp = http.post("/encode_internvit_levels", files=upload(data))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"global", "focused", "tiles", "combined", "boxes"}
    boxes = body["boxes"]
    assert len(body["tiles"]) == len(boxes["tiles"]) == 4
    pairs = [(body["global"], boxes["global"]), (body["focused"], boxes["focused"])] + list(zip(body["tiles"], boxes["tiles"]))
    for vector, box in pairs:
        assert np.abs(np.asarray(vector, dtype=np.float32) - reference[1](data, box)).max() < TOLERANCE
    width, height = Image.open(io.BytesIO(data)).size
    assert boxes["global"] == [0, 0, width, height]
    tiles_mean = np.mean(body["tiles"], axis=0)
    tiles_mean /= np.linalg.norm(tiles_mean)
    combined = 0.5 * np.asarray(body["global"]) + 0.25 * np.asarray(body["focused"]) + 0.25 * tiles_mean
    np.testing.assert_allclose(body["combined"], combined / np.linalg.norm(combined), atol=1e-5)


def test_input_forms_agree(http):
    by_upload = http.post("/encode_internvit", files=upload(JPEG)).json()
    by_base64 = http.post("/encode_internvit", json={"image_base64": base64.b64encode(JPEG).decode()}).json()
    np.testing.assert_array_equal(by_upload, by_base64)
    levels = http.post("/encode_internvit_levels", json={"image_base64": base64.b64encode(JPEG).decode()}).json()
    np.testing.assert_allclose(levels["global"], by_upload, atol=1e-6)  # square: the same pixels


@pytest.mark.parametrize("route", ["/encode_internvit", "/encode_internvit_levels"])
def test_bad_inputs_are_clean_4xx(http, route):
    resp = http.post(route, json={})
    assert resp.status_code == 400 and resp.json()["error"] == "missing_image"
    resp = http.post(route, files=upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100))
    assert resp.status_code == 400 and resp.json()["error"] == "corrupt_image"
    resp = http.post(route, files=upload(b"II*\x00" + b"\x00" * 100))
    assert resp.status_code == 415
    resp = http.post(route, json={"url": "http://169.254.169.254/latest/meta-data/"})
    assert resp.status_code == 400 and resp.json()["error"] == "url_not_allowed"


def test_openapi_documents_the_routes(http):
    spec = http.get("/docs.json").json()
    for route in ("/encode_internvit", "/encode_internvit_levels", "/embedding/fast_extract", "/embedding/test_extract"):
        assert route in spec["paths"], route
    assert "patch tokens" in spec["paths"]["/encode_internvit"]["post"]["description"]


CLIENTS = 12
REQUESTS = 48


async def burst(base_url: str) -> list[int]:
    images = [JPEG, LANDSCAPE, encode(noise_image(300, 200, seed=3), "JPEG")]

    async def one(client: httpx.AsyncClient, i: int) -> int:
        resp = await client.post("/encode_internvit_levels", files=upload(images[i % 3]))
        return resp.status_code

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        sem = asyncio.Semaphore(CLIENTS)

        async def guarded(i: int) -> int:
            async with sem:
                return await one(client, i)

        return await asyncio.gather(*(guarded(i) for i in range(REQUESTS)))


def forward_stats(base_url: str) -> dict[str, float]:
    """image_embed_batch_items{runner="internvit"}: forwards run and views in them."""
    stats = {"count": 0.0, "sum": 0.0}
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        for kind in stats:
            if line.startswith(f"image_embed_batch_items_{kind}{{") and 'runner="internvit"' in line:
                stats[kind] += float(line.rsplit(" ", 1)[1])
    return stats


def test_views_of_concurrent_requests_share_forward_passes(server):
    before = batch_stats(server.url, "internvit_runner", "encode_images")
    forwards_before = forward_stats(server.url)
    statuses = asyncio.run(burst(server.url))
    after = batch_stats(server.url, "internvit_runner", "encode_images")
    forwards_after = forward_stats(server.url)

    assert statuses == [200] * REQUESTS, f"{statuses}\n{server.log(30)}"
    requests = after["sum"] - before["sum"]
    batches = after["count"] - before["count"]
    forwards = forwards_after["count"] - forwards_before["count"]
    views = forwards_after["sum"] - forwards_before["sum"]
    assert views == 6 * REQUESTS  # every view of every request ran exactly once
    assert requests >= REQUESTS  # a request split across two batches counts in both
    assert batches < REQUESTS, "every request ran alone: its views were never merged with another's"
    assert after["le_1"] - before["le_1"] < batches, "no batch held views of two requests"
    print(
        f"\n{REQUESTS} three-level requests ({views:.0f} views) from {CLIENTS} clients ran in {forwards:.0f} forward passes: "
        f"mean {views / forwards:.1f} views and {requests / batches:.1f} requests per batch"
    )


def test_bentoml_client_as_the_readme_shows(server, tmp_path):
    import bentoml

    path = tmp_path / "astronaut.jpg"
    path.write_bytes(JPEG)
    with bentoml.SyncHTTPClient(server.url, timeout=60) as client:
        vector = client.encode_internvit(image=path)
        levels = client.encode_internvit_levels(image_base64=base64.b64encode(JPEG).decode())
    assert len(vector) == len(levels["global"]) == len(levels["combined"])
    assert len(levels["tiles"]) == 4 and set(levels["boxes"]) == {"global", "focused", "tiles"}


def test_benchmark_module_against_the_server(server, monkeypatch):
    """bench/internvit.py --url: both extractors served, every response a 200."""
    import importlib

    bench = importlib.import_module("bench.internvit")
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "tiny")  # run() sets it; monkeypatch restores it
    result = bench.run(bench.parse_args(["--profile", "tiny", "--images", "3", "--url", server.url, "--concurrency", "2"]))
    for name in ("simple", "three_level"):
        assert result["served"][name]["statuses"] == {200: 3} and result["served"][name]["images_per_s"] > 0
