"""`image-embed search-text`, `search-image` and `stats`: the search library's own verbs, asked
of a running server over its HTTP API (POST /search_text, /search_image, /index_stats).

A server that answers an error ({error, detail}) or cannot be reached ends the command with
exit status 1 and one line on stderr; the answer goes to stdout, as a table or, with --json,
as the server's JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:3000"
TIMEOUT_S = 120.0


class ServerError(Exception):
    """The server's error answer, or why it could not be asked: one line for stderr."""


def call(url: str, route: str, api_key: str | None, **request: Any) -> dict:
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        answer = httpx.post(f"{url.rstrip('/')}/{route}", headers=headers, timeout=TIMEOUT_S, **request)
    except httpx.HTTPError as exc:
        raise ServerError(f"cannot reach the server at {url}: {exc}") from None
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200:
        if isinstance(body, dict) and "error" in body:
            raise ServerError(f"the server answered {answer.status_code} {body['error']}: {body.get('detail', '')}")
        raise ServerError(f"the server answered {answer.status_code}: {answer.text[:300]}")
    if not isinstance(body, dict):
        raise ServerError(f"the server answered 200 without a JSON object: {answer.text[:300]}")
    return body


def search_text(url: str, query: str, top_k: int, index: str, api_key: str | None) -> dict:
    return call(url, "search_text", api_key, json={"query": query, "top_k": top_k, "index": index})


def search_image(url: str, image: Path, top_k: int, index: str, api_key: str | None) -> dict:
    with image.open("rb") as f:
        return call(url, "search_image", api_key, files={"image": (image.name, f)},
                    data={"top_k": str(top_k), "index": index})


def index_stats(url: str, index: str, api_key: str | None) -> dict:
    return call(url, "index_stats", api_key, json={"index": index})


def print_hits(answer: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer))
        return
    results = answer.get("results", [])
    print(f"{len(results)} result(s) in index {answer.get('index')!r}")
    for rank, hit in enumerate(results, 1):
        print(f"{rank:4d}  {hit['score']:.4f}  {hit['key']}")


def print_stats(answer: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer))
        return
    for name in ("index", "count", "dimension", "model", "metric", "index_type", "bytes_on_disk"):
        print(f"{name:14s} {answer.get(name)}")
    backend = (answer.get("details") or {}).get("backend")
    if backend:
        print(f"{'backend':14s} {backend}")


def report(exc: ServerError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1
