"""PostgreSQL stopped for 20 s under 32 concurrent clients of a real `bentoml serve`: every
call answers within IMAGE_EMBED_SEARCH_CONNECT_TIMEOUT + 1 s (503 `search_backend_unavailable`
with Retry-After while the database is down), nothing answers 500, the server recovers by
itself once the database is back, and no acknowledged write is lost.

The database is a server of this module's own (the session's stays up for the other tests);
the connect timeout is 2 s (libpq's smallest) to keep the test short.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter

import httpx
import numpy as np
import pytest

from tests.integration.conftest import start_server
from tests.postgres import StoppableServer
from tests.search.images import block_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLIENTS = 32
OUTAGE_S = 20.0
CONNECT_TIMEOUT_S = 2.0
INDEX = "outage"


@pytest.fixture(scope="module")
def database():
    with StoppableServer() as pg:
        yield pg


@pytest.fixture(scope="module")
def server(tiny_models, database):
    srv = start_server(
        IMAGE_EMBED_SEARCH_URL=database.fresh_database("outage"), IMAGE_EMBED_SEARCH_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S)
    )
    yield srv
    srv.stop()


class Client(threading.Thread):
    """Writes (index_images of one image under a new key) and reads (get, search_vector, in
    turn) until stopped; records every answer as (start, seconds, status, Retry-After, code)."""

    def __init__(self, url: str, n: int, dim: int, stop: threading.Event) -> None:
        super().__init__()
        self.url, self.n, self.dim, self.stop = url, n, dim, stop
        self.answers: list[tuple[float, float, int | str, str | None, str | None]] = []
        self.acked: list[str] = []

    def run(self) -> None:
        rng = np.random.default_rng(self.n)
        png = base64.b64encode(block_png(self.n)).decode()
        with httpx.Client(base_url=self.url, timeout=60) as http:
            i = 0
            while not self.stop.is_set():
                key = f"c{self.n}-{i}"
                if i % 3 == 0:
                    call = ("/index_images", {"images_base64": [png], "keys": [key], "index": INDEX})
                elif i % 3 == 1:
                    call = ("/get", {"keys": [f"c{self.n}-0"], "index": INDEX})
                else:
                    call = ("/search_vector", {"vector": rng.standard_normal(self.dim).tolist(), "index": INDEX, "top_k": 5})
                start = time.monotonic()
                try:
                    resp = http.post(*call[:1], json=call[1])
                    status, retry, code = resp.status_code, resp.headers.get("retry-after"), None
                    if status != 200:
                        code = resp.json().get("error")
                    elif call[0] == "/index_images" and resp.json()["indexed"] == 1:
                        self.acked.append(key)
                except httpx.HTTPError as exc:
                    status, retry, code = type(exc).__name__, None, None
                self.answers.append((start, time.monotonic() - start, status, retry, code))
                i += 1
                time.sleep(0.05)


def test_a_20s_outage_under_32_clients(server, database):
    b64 = base64.b64encode(block_png(7)).decode()
    first = httpx.post(f"{server.url}/index_images", json={"images_base64": [b64], "keys": ["seed"], "index": INDEX}, timeout=60)
    assert first.status_code == 200, first.text
    dim = len(httpx.post(f"{server.url}/get", json={"keys": ["seed"], "index": INDEX, "with_vectors": True}, timeout=60).json()["items"][0]["vector"])

    stop = threading.Event()
    clients = [Client(server.url, n, dim, stop) for n in range(CLIENTS)]
    for c in clients:
        c.start()
    time.sleep(3)
    down = time.monotonic()
    database.stop()
    time.sleep(OUTAGE_S)
    database.start()
    up = time.monotonic()
    recovered_at = None
    deadline = up + 30
    while time.monotonic() < deadline and recovered_at is None:
        time.sleep(0.2)  # recovered: every client has had a 200 that started after the restart
        if all(any(s == 200 and t0 > up for t0, _, s, _, _ in c.answers) for c in clients):
            recovered_at = time.monotonic()
    time.sleep(1)
    stop.set()
    for c in clients:
        c.join(60)

    answers = [a for c in clients for a in c.answers]
    during = [a for a in answers if down + 0.5 < a[0] < up]
    statuses = Counter(a[2] for a in answers)
    slowest = max(a[1] for a in answers)
    summary = (
        f"{len(answers)} answers {dict(statuses)}; in the outage {len(during)}, p50 "
        f"{np.median([a[1] for a in during]) * 1000:.0f} ms, max {max(a[1] for a in during):.2f} s; slowest overall "
        f"{slowest:.2f} s; recovered {None if recovered_at is None else round(recovered_at - up, 1)} s after the restart"
    )
    print(summary)
    assert recovered_at is not None, f"no recovery without a restart: {summary}\n{server.log()}"
    assert set(statuses) <= {200, 503}, summary  # never a 500, a 504 or a dropped connection
    refusals = [a for a in answers if a[2] == 503]
    assert all(a[3] == "1" and a[4] == "search_backend_unavailable" for a in refusals), refusals[:5]
    late = [a for a in answers if a[1] > CONNECT_TIMEOUT_S + 1]
    assert not late, f"{len(late)} answers slower than the connect timeout + 1 s: {summary}"
    assert len(during) > CLIENTS * 10 and all(a[2] == 503 for a in during), summary

    acked = sorted(k for c in clients for k in c.acked)
    assert len(acked) > CLIENTS
    got = httpx.post(f"{server.url}/get", json={"keys": acked, "index": INDEX}, timeout=60).json()
    assert got["missing"] == [], f"{len(got['missing'])} acknowledged writes lost"
