"""The UI's routes without a server: the pages and their files from a fixed table (never a
path on disk), a Content-Security-Policy that runs only the server's own scripts, open
without an API key while every API still needs one, and scripts that never parse data as HTML."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.auth import APIKeyMiddleware, is_open
from gateway.ui import ASSETS, PAGE_BODIES, PAGES, STATIC, ui_routes

KEY = "ui-unit-key-0123456789"


@pytest.fixture()
def client():
    app = FastAPI()
    app.include_router(ui_routes)

    @app.post("/search_text")
    async def api():
        return {"results": []}

    app.add_middleware(APIKeyMiddleware, keys=(KEY,))
    return TestClient(app)


def test_pages_and_files_open_without_a_key_apis_do_not(client):
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/search"
    for page in PAGES:
        resp = client.get(f"/ui/{page}")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        for src in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', resp.text):
            assert client.get(src).status_code == 200, src
    assert client.get("/ui/static/ui.js").headers["content-type"].startswith("text/javascript")
    assert client.post("/search_text").status_code == 401
    assert client.post("/search_text", headers={"X-API-Key": KEY}).status_code == 200


@pytest.mark.parametrize("path", ["/ui/static/..%2F__init__.py", "/ui/static/__init__.py", "/ui/nope", "/ui/static/%2e%2e%2fauth.py"])
def test_nothing_else_is_served(client, path):
    assert client.get(path).status_code in (401, 404)


def test_only_the_ui_itself_is_open():
    assert is_open("/ui") and is_open("/ui/search") and is_open("/ui/static/ui.js") and is_open("/readyz")
    for path in ("/uix", "/ui/../search_text", "/ui//search_text", "/search_text", "/thumbnail/default/a", "/health"):
        assert not is_open(path), path


def test_the_table_is_every_file_there():
    assert set(ASSETS) == {p.name for p in STATIC.iterdir()} and {f"{p}.js" for p in PAGES} <= set(ASSETS)
    for name, body in PAGE_BODIES.items():
        assert b"{{" not in body and f'src="/ui/static/{name}.js"'.encode() in body and body.count(b"<main>") == 1


def test_scripts_never_parse_data_as_html():
    """Data reaches the page as text only (textContent, attributes): no HTML parsing APIs."""
    for name, (body, _) in ASSETS.items():
        if name.endswith(".js"):
            text = body.decode()
            for api in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert api not in text, f"{name} uses {api}"
    for body in PAGE_BODIES.values():
        assert b"<script>" not in body and b"style=" not in body  # nothing inline: the CSP allows none
