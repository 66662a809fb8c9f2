"""Requests no route matches get the gateway's JSON 404; the routes' own answers pass."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient

from gateway.unroutable import UnroutablePathMiddleware


def test_an_unmatched_path_gets_a_json_404_and_routes_answer_for_themselves():
    app = FastAPI()

    @app.get("/image/{key:path}/similar")
    async def similar(key: str):
        if key == "gone":
            return JSONResponse({"error": "key_not_found", "detail": "no item 'gone'"}, status_code=404)
        return {"key": key}

    app.add_middleware(UnroutablePathMiddleware)
    client = TestClient(app)
    for path in ("/no/such/route", "/image/a%0Ab/similar"):  # Starlette's `.*` stops at a newline
        resp = client.get(path)
        assert resp.status_code == 404 and resp.headers["content-type"] == "application/json", path
        assert resp.json()["error"] == "not_found" and "no such route" in resp.json()["detail"], path
    assert client.get("/image/a/b/similar").json() == {"key": "a/b"}
    own = client.get("/image/gone/similar")
    assert own.status_code == 404 and own.json()["error"] == "key_not_found"
