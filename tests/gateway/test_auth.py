"""Optional API-key authentication."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.auth import APIKeyMiddleware, AuthSettingsError, load_api_keys

KEY = "k" * 20
OTHER = "o" * 24


def app_with(keys: tuple[str, ...]):
    async def ok(_request):
        return PlainTextResponse("ok")

    routes = [Route(path, ok) for path in ("/encode_image", "/livez", "/readyz", "/healthz", "/metrics", "/health")]
    return APIKeyMiddleware(Starlette(routes=routes), keys=keys)


def get(app, path: str, **headers: str) -> httpx.Response:
    import asyncio

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_no_keys_means_open():
    assert get(app_with(()), "/encode_image").status_code == 200


@pytest.mark.parametrize("path", ["/encode_image", "/metrics", "/health"])
def test_missing_or_wrong_key_is_401(path):
    app = app_with((KEY,))
    for headers in ({}, {"authorization": f"Bearer {OTHER}"}, {"x-api-key": OTHER}, {"authorization": KEY}):
        resp = get(app, path, **headers)
        assert resp.status_code == 401
        assert resp.json()["error"] == "unauthorized"
        assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("headers", [{"authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {OTHER}"}, {"x-api-key": KEY}])
def test_any_configured_key_is_accepted(headers):
    assert get(app_with((KEY, OTHER)), "/encode_image", **headers).status_code == 200


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_probes_stay_open(path):
    assert get(app_with((KEY,)), path).status_code == 200


def test_keys_from_env_and_file(monkeypatch, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotated monthly\n{OTHER}\n\n")
    monkeypatch.setenv("IMAGE_EMBED_API_KEYS", f" {KEY} ,")
    monkeypatch.setenv("IMAGE_EMBED_API_KEYS_FILE", str(key_file))
    assert load_api_keys() == (KEY, OTHER)


def test_unset_means_no_keys(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_API_KEYS", raising=False)
    monkeypatch.delenv("IMAGE_EMBED_API_KEYS_FILE", raising=False)
    assert load_api_keys() == ()


def test_short_keys_are_refused(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_API_KEYS", "secret")
    with pytest.raises(AuthSettingsError, match="at least 16"):
        load_api_keys()


def test_unreadable_key_file(monkeypatch, tmp_path):
    monkeypatch.delenv("IMAGE_EMBED_API_KEYS", raising=False)
    monkeypatch.setenv("IMAGE_EMBED_API_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(AuthSettingsError, match="cannot be read"):
        load_api_keys()
