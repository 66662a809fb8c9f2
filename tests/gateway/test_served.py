"""APIs of models a server does not serve: out of the service, answered 404 naming the model."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from starlette.testclient import TestClient

from gateway.served import answer_not_served, prune_unserved_apis, required_models, requires, requires_one_of


def api(route, func):
    return SimpleNamespace(route=route, func=func)


def test_prune_removes_exactly_the_apis_whose_models_are_missing():
    @requires("clip")
    def encode(): ...

    @requires("internvit")
    def internvit(): ...

    def search(): ...

    service = SimpleNamespace(apis={"encode": api("/encode", encode), "internvit": api("/iv", internvit), "search": api("/s", search)})
    assert required_models(service.apis["encode"]) == ("clip",) and required_models(service.apis["search"]) == ()
    assert prune_unserved_apis(service, ["clip"]) == {"/iv": "internvit"}
    assert sorted(service.apis) == ["encode", "search"]


def test_left_out_routes_answer_a_json_404_naming_the_model():
    app = FastAPI()
    answer_not_served(app, {"/encode_internvit": "internvit", "/embedding/fast_extract": "dinov2_giant"})
    client = TestClient(app)
    for path, model in [("/encode_internvit", "internvit"), ("/embedding/fast_extract", "dinov2_giant")]:
        resp = client.post(path, json={"url": "x"})
        assert resp.status_code == 404
        assert resp.json()["error"] == "model_not_served"
        assert f"needs the {model} model" in resp.json()["detail"]


def test_an_api_taking_a_model_stays_while_one_of_its_models_is_served():
    @requires_one_of(["clip", "clip_vit_l_14_openai"])
    def encode(): ...

    service = SimpleNamespace(apis={"encode": api("/encode", encode)})
    assert prune_unserved_apis(service, ["clip_vit_l_14_openai", "face"]) == {} and "encode" in service.apis
    assert prune_unserved_apis(service, ["face"]) == {"/encode": "clip"} and not service.apis
