"""A runner that does not answer within its traffic timeout: the gateway answers 504
`model_timeout` at once (not a 500), and the other models keep serving.

The server here gives the InternViT runner a 10 ms timeout (a configuration file of its own),
shorter than any forward pass."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.conftest import ROOT, encode, photo
from tests.integration.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def impatient_server(tiny_models, tmp_path_factory):
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    config["services"]["internvit_runner"]["traffic"]["timeout"] = 0.01
    path = tmp_path_factory.mktemp("timeout") / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    srv = start_server(BENTOML_CONFIG=str(path))
    yield srv
    srv.stop()


def test_a_runner_timeout_is_a_504(impatient_server):
    with httpx.Client(base_url=impatient_server.url, timeout=60) as client:
        for route in ("/encode_internvit", "/encode_internvit_levels"):
            resp = client.post(route, files={"image": ("a.jpg", JPEG, "image/jpeg")})
            assert resp.status_code == 504, resp.text
            assert resp.json()["error"] == "model_timeout" and resp.headers["retry-after"] == "1"
        assert client.post("/encode_image", files={"image": ("a.jpg", JPEG, "image/jpeg")}).status_code == 200
    assert "Exception on /encode_internvit" not in impatient_server.log(400)  # the gateway raised nothing
