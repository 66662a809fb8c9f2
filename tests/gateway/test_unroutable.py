"""Paths no route can match (a control character) get the gateway's JSON 404."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.testclient import TestClient

from gateway.unroutable import UnroutablePathMiddleware


def test_a_path_with_a_newline_gets_a_json_404_and_others_pass():
    app = FastAPI()

    @app.get("/image/{key:path}/similar")
    async def similar(key: str):
        return {"key": key}

    app.add_middleware(UnroutablePathMiddleware)
    client = TestClient(app)
    resp = client.get("/image/a%0Ab/similar")
    assert resp.status_code == 404 and resp.headers["content-type"] == "application/json"
    assert resp.json()["error"] == "not_found" and "control characters" in resp.json()["detail"]
    assert client.get("/image/a/b/similar").json() == {"key": "a/b"}
