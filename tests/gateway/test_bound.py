"""gateway/bound.py: a plain route receives the object bound to its app, by type."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.bound import bind, bound


class Search:
    def answer(self) -> str:
        return "search"


class Admin:
    def answer(self) -> str:
        return "admin"


def app_with_routes() -> FastAPI:
    app = FastAPI()

    @app.get("/search")
    async def search(routes: Search = bound(Search)) -> str:
        return routes.answer()

    @app.get("/admin")
    async def admin(routes: Admin = bound(Admin)) -> str:
        return routes.answer()

    return app


def test_each_route_gets_the_object_of_its_type():
    app = app_with_routes()
    bind(app, Search(), Admin())
    with TestClient(app) as client:
        assert client.get("/search").json() == "search"
        assert client.get("/admin").json() == "admin"
    assert "routes" not in str(client.app.openapi()["paths"]["/search"])  # not a request parameter


def test_two_objects_of_one_type_are_refused():
    with pytest.raises(ValueError, match="one type"):
        bind(FastAPI(), Search(), Search())
