"""The plain HTTP routes' access to the typed route objects of the worker (gateway/routes.py).

The routes of gateway/web.py are declared at import (BentoML reads their paths into the
OpenAPI document), before the service instance and its route objects exist. The service hands
its objects to the app once, at start-up (`bind`), and each route declares the object it
calls by its type (`bound(SearchRoutes)`): the same objects the BentoML APIs delegate to, with
no look-up on the live service.

    @router.get("/stats")
    async def stats(index: str = "default", admin: IndexAdminRoutes = bound(IndexAdminRoutes)): ...
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Depends, Request
from starlette.applications import Starlette

T = TypeVar("T")


def bind(app: Starlette, *objects: object) -> None:
    """Give `app`'s routes these objects, one per type (the service's start-up calls this)."""
    by_type = {type(o): o for o in objects}
    if len(by_type) != len(objects):
        raise ValueError("bind: two objects of one type; a route could not tell them apart")
    app.state.bound = by_type


def bound(kind: type[T]) -> Any:
    """A FastAPI dependency: the object of type `kind` bound to the app that serves the request."""

    def bound_object(request: Request) -> T:
        return request.app.state.bound[kind]

    return Depends(bound_object)
