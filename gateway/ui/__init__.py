"""The web UI: GET /ui/search, /ui/browse, /ui/duplicates and /ui/analyze (GET /ui leads to search).

Plain HTML, CSS and JavaScript: no build step, no CDN, so the pages work offline. Each page
is its <main> (pages/NAME.html) in the shared frame (shell.html), with its script
static/NAME.js beside the shared static/ui.js and static/ui.css. The pages call the server's own APIs from the browser (search_text,
similar, find_duplicates, analyze, ...), with the API key in the `X-API-Key` header when the
server has keys (asked once, kept in sessionStorage, never put in a URL). The pages and
their scripts carry no data, so they are open without a key (gateway/auth.py); everything
they show comes through the APIs, which need one.

The files are read once at import into a fixed table by name: no route maps a URL to a path
on disk. Every page answers with a Content-Security-Policy that allows only this server's
own scripts, so data rendered into a page can never run as code.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

HERE = Path(__file__).parent
STATIC = HERE / "static"
PAGES = {"search": "Search", "browse": "Browse", "duplicates": "Duplicates", "analyze": "Analyze"}  # name: title
HTML = "text/html; charset=utf-8"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
ASSETS: dict[str, tuple[bytes, str]] = {p.name: (p.read_bytes(), TYPES[p.suffix]) for p in sorted(STATIC.iterdir()) if p.suffix in TYPES}


def _page(name: str, title: str) -> bytes:
    shell = (HERE / "shell.html").read_text()
    main = (HERE / "pages" / f"{name}.html").read_text()
    return shell.replace("{{title}}", title).replace("{{page}}", name).replace("{{main}}", main.rstrip("\n")).encode()


PAGE_BODIES = {name: _page(name, title) for name, title in PAGES.items()}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
UI_PREFIX = "/ui"

ui_routes = APIRouter()


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"the UI has no file {name!r}")
    body, media_type = ASSETS[name]
    return Response(body, media_type=media_type, headers=HEADERS)


def _page_response(name: str) -> Response:
    return Response(PAGE_BODIES[name], media_type=HTML, headers=HEADERS)


@ui_routes.get(UI_PREFIX, include_in_schema=False)
@ui_routes.get(UI_PREFIX + "/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse(UI_PREFIX + "/search", status_code=307)


@ui_routes.get(UI_PREFIX + "/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    return _asset(name)


@ui_routes.get(UI_PREFIX + "/{page}", include_in_schema=False)
async def page(page: str) -> Response:
    if page not in PAGES:
        raise HTTPException(404, f"the UI has the pages {', '.join(PAGES)}")
    return _page_response(page)
