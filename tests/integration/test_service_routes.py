"""The plain routes of the served bundle: /, /health, probes, metrics, docs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

APIS = {"encode_image", "encode_images", "encode_text", "encode_texts", "embed_image", "analyze", "analyze_image", "analyze_image_upload"}


def test_root_is_service_info(http):
    resp = http.get("/")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["profile"] == "tiny"
    assert APIS <= set(body["apis"])
    models = {m["key"]: m for m in body["models"]}
    assert models["clip"]["embedding_size"] == 512
    assert models["person"]["embedding_size"] is None  # detectors and captioners do not embed


def test_health_has_both_seeds_fields(http):
    resp = http.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    # seed 001: status, model_loaded, device; seed 004: status, model, device, embedding_size
    assert body["status"] == "healthy"
    assert body["model_loaded"] is True
    assert body["model"] == "ViT-B/32"
    assert body["device"] == "cpu"
    assert body["embedding_size"] == 512
    assert body["model_name"].startswith("clip-tiny-random:")


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_probes(http, path):
    assert http.get(path).status_code == 200


def test_metrics_are_prometheus_text(http):
    resp = http.get("/metrics")
    assert resp.status_code == 200
    assert "bentoml_service_request_total" in resp.text or "bentoml_service_request_duration" in resp.text


def test_docs_page_and_openapi(http):
    page = http.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    spec = http.get("/docs.json").json()
    paths = set(spec["paths"])
    assert {"/encode_image", "/encode_images", "/encode_text", "/encode_texts", "/embed-image"} <= paths
    assert {"/health", "/"} <= paths
    assert {"/analyze", "/analyze_image/", "/analyze_image_upload/", "/available_operations/"} <= paths
    description = spec["paths"]["/encode_image"]["post"].get("description", "")
    assert "512" in description
