"""A runner process killed (kill -9) under load: clean 503/504 answers while it is down, never a
500 or a hang; /readyz says 503 (naming it) while /livez stays 200; BentoML's arbiter starts a
new runner, /readyz returns to 200 and requests succeed again, on the same gateway process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from tests.conftest import encode, photo
from tests.integration.conftest import Server, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JPEG = encode(photo(), "JPEG")
CLIENTS = 4
LOAD_S = 20.0  # the load runs at least this long, and until the runner is back and serving
KILL_AFTER_S = 7.0
# Each forward of the tiny model sleeps this long per item, warm-ups included: the restarted
# runner then takes longer to come back than the gateway's readiness probe waits (5 s). A tiny
# runner otherwise restarts within the probe's wait: the probe's new connection waits in the
# arbiter's socket backlog and is answered by the new runner, and /readyz never says 503.
FORWARD_DELAY_MS = "3000"
RECOVERY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 75.0  # above the gateway's own 60 s: an answer past it is a hang


def worker(server: Server, service_name: str) -> psutil.Process:
    """The BentoML worker serving `service_name` (`-m _bentoml_impl.worker.service ... --service-name X`)."""
    found = []
    for proc in psutil.Process(server.process.pid).children(recursive=True):
        try:
            args = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "_bentoml_impl.worker.service" in args and "--service-name" in args:
            if args[args.index("--service-name") + 1] == service_name:
                found.append(proc)
    assert len(found) == 1, f"{service_name}: {found}"
    return found[0]


@dataclass
class Record:
    answers: list[tuple[float, int | str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int | str, body: object) -> None:
        with self.lock:
            self.answers.append((time.monotonic(), status, body))


def load(url: str, record: Record, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        while not stop.is_set():
            try:
                resp = http.post("/encode_image", files={"image": ("a.jpg", JPEG, "image/jpeg")})
            except httpx.HTTPError as exc:  # a hang past the timeout, or a dropped connection
                record.add(type(exc).__name__, str(exc))
                continue
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
            record.add(resp.status_code, body if resp.status_code != 200 else len(body))


def probe(url: str, path: str, record: Record, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                resp = http.get(path)
                record.add(resp.status_code, resp.text)
            except httpx.HTTPError as exc:
                record.add(type(exc).__name__, str(exc))
            time.sleep(0.25)


@pytest.fixture(scope="module")
def server(tiny_models):
    srv = start_server(IMAGE_EMBED_TEST_FORWARD_DELAY_MS=FORWARD_DELAY_MS)
    yield srv
    srv.stop()


def test_a_killed_runner_is_restarted_and_the_gateway_answers_cleanly_meanwhile(server):
    gateway = worker(server, "image_embed")
    clip = worker(server, "clip_runner")
    requests, readyz, livez = Record(), Record(), Record()
    stop_load, stop_probes = threading.Event(), threading.Event()
    threads = [threading.Thread(target=load, args=(server.url, requests, stop_load)) for _ in range(CLIENTS)]
    threads += [
        threading.Thread(target=probe, args=(server.url, "/readyz", readyz, stop_probes)),
        threading.Thread(target=probe, args=(server.url, "/livez", livez, stop_probes)),
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        time.sleep(KILL_AFTER_S)
        served_before = sum(1 for _, status, _ in requests.answers if status == 200)
        killed_at = time.monotonic()
        clip.kill()  # SIGKILL
        clip.wait(10)

        # The arbiter starts a new CLIP worker; then /readyz returns to 200.
        deadline = killed_at + RECOVERY_TIMEOUT_S
        restarted = None
        while restarted is None and time.monotonic() < deadline:
            try:
                restarted = worker(server, "clip_runner")
            except AssertionError:
                time.sleep(0.2)
        assert restarted is not None, f"no new clip_runner worker within {RECOVERY_TIMEOUT_S} s\n{server.log(60)}"
        assert restarted.pid != clip.pid
        while time.monotonic() < deadline:
            with readyz.lock:
                if any(t > killed_at and status == 200 for t, status, _ in readyz.answers):
                    break
            time.sleep(0.2)
        ready_again_at = time.monotonic()
        # Keep the load on a while after recovery: requests must succeed again.
        time.sleep(max(0.0, started + LOAD_S - time.monotonic()) + 3.0)
    finally:
        stop_load.set()
        for t in threads[:CLIENTS]:
            t.join(REQUEST_TIMEOUT_S + 5)
        stop_probes.set()
        for t in threads[CLIENTS:]:
            t.join(35)

    statuses = [status for _, status, _ in requests.answers]
    summary = {s: statuses.count(s) for s in set(statuses)}
    print(
        f"\n{len(statuses)} requests: {summary}; served before the kill: {served_before}; "
        f"ready again {ready_again_at - killed_at:.1f} s after the kill"
    )
    assert served_before > 0, server.log(60)
    # Every answer: 200, or a clean JSON 503/504 that names the model. No 500, no hang.
    assert set(statuses) <= {200, 503, 504}, f"{summary}\n{[a for a in requests.answers if a[1] != 200][:5]}"
    for _, status, body in requests.answers:
        if status != 200:
            assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
            assert body["error"] in ("model_unavailable", "model_timeout") and "clip" in body["detail"], body

    # /readyz: 503 (never 500) naming the runner while it is down, 200 again after the restart.
    after_kill = [(t, status, body) for t, status, body in readyz.answers if t > killed_at]
    ready_statuses = {status for _, status, _ in after_kill}
    assert ready_statuses <= {200, 503}, ready_statuses
    down = [body for _, status, body in after_kill if status == 503]
    assert down, f"/readyz never reported the dead runner: {after_kill[:10]}"
    assert all('"clip"' in body and "not_ready" in body for body in down), down[:3]
    assert after_kill[-1][1] == 200, after_kill[-5:]
    # /livez: the gateway itself stayed alive throughout.
    assert {status for _, status, _ in livez.answers} == {200}

    # Requests succeed again, served by the same gateway process.
    late = [status for t, status, _ in requests.answers if t > ready_again_at + 1.0]
    assert late and all(status == 200 for status in late), late
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for _ in range(3):
            assert http.post("/encode_image", files={"image": ("a.jpg", JPEG, "image/jpeg")}).status_code == 200
        assert http.get("/health").json()["status"] == "healthy"
    assert worker(server, "image_embed").pid == gateway.pid
    assert gateway.is_running() and server.process.poll() is None
