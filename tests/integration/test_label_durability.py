"""kill -9 of the whole server while two clients write ratings, tags and hidden flags at once,
on both back ends: after a restart every acknowledged write is there (0 lost), and the
index's own check (labels against the database included) passes."""

from __future__ import annotations

import tempfile
import threading
import time

import httpx
import numpy as np
import pytest

from tests.integration.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INDEX = "reviewed"
N_ITEMS = 400
KEYS = [f"gallery/{i:04d}.jpg" for i in range(N_ITEMS)]


def rate(url: str, acked: dict[str, int], stop: threading.Event) -> None:
    """One set_rating per key (each key rated once), until the server dies."""
    with httpx.Client(base_url=url, timeout=30) as http:
        for i, key in enumerate(KEYS):
            if stop.is_set():
                return
            try:
                resp = http.post(f"/rating/{key}", params={"index": INDEX}, json={"rating": 1 + i % 5})
            except httpx.HTTPError:
                return
            if resp.status_code == 200:
                acked[key] = resp.json()["rating"]


def tag(url: str, acked_tags: dict[str, set[str]], acked_hidden: set[str], stop: threading.Event) -> None:
    """POST /tags/bulk on pairs of keys from the other end: a tag each, every third call hides."""
    with httpx.Client(base_url=url, timeout=30) as http:
        for n, start in enumerate(range(N_ITEMS - 2, 0, -2)):
            if stop.is_set():
                return
            pair, name, hide = KEYS[start : start + 2], f"t{n % 7}", n % 3 == 0
            body = {"image_ids": pair, "add": [name], **({"hidden": True} if hide else {})}
            try:
                resp = http.post("/tags/bulk", params={"index": INDEX}, json=body)
            except httpx.HTTPError:
                return
            if resp.status_code == 200 and resp.json()["updated"] == 2:
                for key in pair:
                    acked_tags.setdefault(key, set()).add(name)
                if hide:
                    acked_hidden.update(pair)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_labels_survive_kill_9(tiny_models, backend):
    if backend == "postgresql":
        from tests.postgres import fresh_database

        env = {"IMAGE_EMBED_SEARCH_URL": fresh_database("labels")}
    else:
        env = {"IMAGE_EMBED_DATA_DIR": tempfile.mkdtemp(prefix="label-durability-")}
    server = start_server(**env)
    ratings: dict[str, int] = {}
    tags: dict[str, set[str]] = {}
    hidden: set[str] = set()
    stop = threading.Event()
    try:
        vectors = np.random.default_rng(0).standard_normal((N_ITEMS, 512)).round(4).tolist()
        for s in range(0, N_ITEMS, 200):
            resp = httpx.post(f"{server.url}/index_vectors", json={"keys": KEYS[s : s + 200], "vectors": vectors[s : s + 200], "index": INDEX}, timeout=60)
            assert resp.status_code == 200, resp.text
        writers = [
            threading.Thread(target=rate, args=(server.url, ratings, stop)),
            threading.Thread(target=tag, args=(server.url, tags, hidden, stop)),
        ]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 120
        while (len(ratings) < 60 or len(tags) < 60) and time.monotonic() < deadline and all(w.is_alive() for w in writers):
            time.sleep(0.02)
        server.kill()  # SIGKILL to every process of the server while both write
        stop.set()
        for w in writers:
            w.join(60)
    finally:
        stop.set()
        server.stop()
    assert len(ratings) >= 60 and len(tags) >= 60, server.log()
    assert len(ratings) < N_ITEMS and len(tags) < N_ITEMS  # the kill landed mid-stream

    restarted = start_server(**env)
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as http:
            items = http.post("/get", json={"keys": KEYS, "index": INDEX}).json()["items"]
            assert len(items) == N_ITEMS
            by_key = {it["key"]: it for it in items}
            lost_ratings = [k for k, r in ratings.items() if by_key[k]["rating"] != r]
            lost_tags = [k for k, names in tags.items() if not names <= set(by_key[k]["tags"])]
            lost_hidden = [k for k in hidden if not by_key[k]["hidden"]]
            assert (lost_ratings, lost_tags, lost_hidden) == ([], [], []), "acknowledged label writes were lost"
            counts = {t["name"]: t["count"] for t in http.get("/tags", params={"index": INDEX}).json()["tags"]}
            assert sum(counts.values()) >= sum(len(v) for v in tags.values())
            report = http.post("/verify_index", json={"index": INDEX, "sample": 0}).json()
            assert report["ok"] and report["problems"] == [], report
    finally:
        restarted.stop()
