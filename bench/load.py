"""Load report: the served bundle at capacity, overloaded, flooded with bad input, after the
overload, and across a kill -9 while indexing.

    .venv/bin/python -m bench --scenario load                     # tiny profile, full size
    .venv/bin/python -m bench --scenario load --profile tiny --quick
    .venv/bin/python -m bench --scenario load --profile bench     # real architectures, random weights

It imports the profile's models if the model store lacks them (`image-embed import-models`),
starts its own `bentoml serve .` (bench/serve_launcher.py: 127.0.0.1, a free port, a private
BENTOML_HOME sharing the model store, a fresh IMAGE_EMBED_DATA_DIR, configuration.yaml) and runs:

baseline   --max-in-flight clients (the gateway's capacity) POST /encode_image; all must be 200
overload   10x as many clients at once; only 200 and 429 `overloaded` with Retry-After allowed
bad_input  malformed JSON, wrong types, corrupt images, huge task lists, huge top_k, long and
           broken unicode texts...; every answer must be a 4xx with a JSON `error`
recovery   the baseline again, right after; all must be 200
kill9      clients add items to an index (acknowledged = 200 with `indexed`), the whole server
           tree gets SIGKILL mid-way, a new server starts on the same data directory, and every
           acknowledged key must be there (items lost = acknowledged but missing)

Per scenario: requests sent, outcomes (HTTP status; `-bad` suffix: a body or header outside the
contract; an exception name: no HTTP answer), p50/p99 latency of the answered requests as the
client saw them (refusals and successes apart in the notes), peak memory of the server's
whole process tree (sum of PSS, so pages shared between the workers count once; sampled every
0.5 s), items lost, 5xx answers. The Markdown table goes to stdout and to
bench-results/load_report.md. Exit status 1 when any 5xx, any lost item, or any scenario's
rule above is broken. All traffic goes to 127.0.0.1; the load generator shares the CPU with
the server, so compare numbers from one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench-results" / "load_report.md"
REQUEST_TIMEOUT_S = 120.0
INDEX = "load-report"


from bench.load_stats import (
    ScenarioResult,
    access_durations_ms,
    check,
    format_outcomes,
    latency_by_outcome,
    outcome_of,
    outcomes_by_label,
    percentile,
    render_table,
)


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    kwargs: dict
    expect: str = "any"
    label: str = ""


class MemorySampler:
    """Peak memory (PSS) of a server's process tree, sampled in a thread."""

    def __init__(self, server, interval_s: float = 0.5) -> None:
        self.server, self.interval_s, self.peak = server, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            server = self.server
            if server is not None:
                self.peak = max(self.peak, server.memory_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def send(client, req: Req) -> tuple[str, float | None, object]:
    """(outcome, seconds or None when no HTTP answer came, the response or None)."""
    import httpx

    started = time.perf_counter()
    try:
        resp = await client.request(req.method, req.path, **req.kwargs)
    except httpx.HTTPError as exc:
        return type(exc).__name__, None, None
    elapsed = time.perf_counter() - started
    return outcome_of(resp.status_code, dict(resp.headers), resp.content, req.expect), elapsed, resp


async def load(url: str, make: Callable[[int], Req], n: int, clients: int, desc: str) -> ScenarioResult:
    """n requests (make(i)) from `clients` concurrent clients, each sending its next one as soon
    as the last is answered."""
    import httpx
    from tqdm import tqdm

    result = ScenarioResult(desc)
    counter = itertools.count()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with tqdm(total=n, desc=desc, unit="req", leave=False) as bar:
        async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as client:

            async def worker() -> None:
                while (i := next(counter)) < n:
                    req = make(i)
                    outcome, elapsed, _ = await send(client, req)
                    result.record(outcome, elapsed, req.label)
                    bar.update()

            await asyncio.gather(*(worker() for _ in range(clients)))
    return result


def test_images(count: int, side: int = 64) -> list[bytes]:
    """A real photograph and seeded noise, as JPEG bytes."""
    import numpy as np
    import skimage.data
    from PIL import Image

    arrays = [skimage.data.astronaut()]
    rng = np.random.default_rng(0)
    arrays += [rng.integers(0, 256, (side + 8 * i, side + 4 * i, 3), dtype=np.uint8) for i in range(count - 1)]
    out = []
    for array in arrays:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def encode_request(images: list[bytes]) -> Callable[[int], Req]:
    def make(i: int) -> Req:
        files = {"image": (f"img{i}.jpg", images[i % len(images)], "image/jpeg")}
        return Req("POST", "/encode_image", {"files": files}, expect="embedding")

    return make


def bad_requests(image: bytes) -> list[Req]:
    """Inputs the server must refuse with a 4xx (the label says which rule). Searches go to
    INDEX, which exists by then (seed_index), so they reach the index runner's own checks."""
    b64 = base64.b64encode(image).decode()
    json_h = {"content-type": "application/json"}

    def raw(path: str, body: bytes, label: str) -> Req:
        return Req("POST", path, {"content": body, "headers": json_h}, label=label)

    def js(path: str, body: object, label: str) -> Req:
        return Req("POST", path, {"json": body}, label=label)

    def upload(data: bytes, label: str, name: str = "a.jpg", mime: str = "image/jpeg") -> Req:
        return Req("POST", "/encode_image", {"files": {"image": (name, data, mime)}}, label=label)

    many_tasks = [{"operation_id": f"t{i}", "type": "embed_clip_vit_b_32"} for i in range(5000)]
    return [
        raw("/encode_texts", b'{"texts": ["a cat",', "truncated JSON"),
        raw("/search_text", b'{"query": "cat" "top_k": 3}', "malformed JSON"),
        raw("/encode_text", b'{"text": "\xff\xfe broken utf-8"}', "invalid UTF-8"),
        raw("/encode_text", b'{"text": "\\ud800"}', "lone surrogate"),
        raw("/search_vector", b'{"vector": [NaN, 1.0], "index": "%s"}' % INDEX.encode(), "NaN in a vector"),
        js("/encode_texts", {"texts": 5}, "wrong type: number for a list"),
        js("/encode_texts", {"texts": [1, {"a": 1}]}, "wrong type: objects for texts"),
        js("/search_text", {"query": ["cat"], "top_k": "ten", "index": INDEX}, "wrong types in search"),
        js("/search_vector", {"vector": "abc", "index": INDEX}, "wrong type: vector"),
        js("/search_vector", {"vector": [0.5, 0.5, 0.5], "index": INDEX}, "vector of the wrong dimension"),
        js("/search_text", {"query": "a cat", "filter": "album=pets", "index": INDEX}, "filter not an object"),
        js("/similar", {"key": "no-such-key", "index": INDEX}, "similar to a missing key"),
        js("/encode_text", {"text": ""}, "empty text"),
        js("/encode_text", {"text": "   \n\t "}, "blank text"),
        js("/encode_text", {"text": "a" * 200_000}, "long text"),
        js("/encode_text", {"text": "\U0001f431\u732b\u0301" * 20_000}, "long unicode text"),
        js("/search_text", {"query": "\u00e9\u4e2d" * 30_000, "index": INDEX}, "long unicode query"),
        js("/encode_texts", {"texts": ["a cat"] * 2000}, "too many texts"),
        js("/search_text", {"query": "a cat", "top_k": 10**9, "index": INDEX}, "huge top_k"),
        js("/search_text", {"query": "a cat", "top_k": 10**30, "index": INDEX}, "top_k beyond int64"),
        js("/search_text", {"query": "a cat", "top_k": -5, "index": INDEX}, "negative top_k"),
        js("/analyze", {"tasks": many_tasks, "image_base64": b64}, "huge task list"),
        js("/analyze", {"tasks": "all of them", "image_base64": b64}, "tasks not a list"),
        js("/encode_image", {"image_base64": "not base64 at all!!"}, "invalid base64"),
        js("/encode_image", {}, "no image"),
        js("/index_images", {"images_base64": [b64], "keys": ["a", "b"], "index": INDEX}, "keys mismatch"),
        upload(b"\xff\xd8\xff\xe0" + os.urandom(2048), "corrupt JPEG"),
        upload(image[: len(image) // 3], "truncated JPEG"),
        upload(b"just some text, not an image", "text as an image", "a.txt", "text/plain"),
        upload(b"", "empty upload"),
        upload(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF as an image", "a.pdf", "application/pdf"),
        Req("POST", "/encode_image", {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            label="multipart without boundary"),
    ]


# ----------------------------------------------------------------------------- scenarios


def index_request(keys: list[str], images_b64: list[str]) -> Req:
    body = {"images_base64": images_b64, "keys": keys, "index": INDEX}
    return Req("POST", "/index_images", {"json": body})


async def index_until_killed(server, images: list[bytes], *, writers: int, batch: int, kill_after: int,
                             result: ScenarioResult) -> set[str]:
    """Writers add batches of new keys; once `kill_after` items are acknowledged the whole
    server tree is killed with SIGKILL while writes are in flight. Returns the acknowledged keys."""
    import httpx

    b64 = [base64.b64encode(img).decode() for img in images]
    acknowledged: set[str] = set()
    serial = itertools.count()
    killed = asyncio.Event()

    async def writer(client) -> None:
        while not killed.is_set():
            numbers = [next(serial) for _ in range(batch)]
            keys = [f"item-{n:07d}" for n in numbers]
            outcome, elapsed, resp = await send(client, index_request(keys, [b64[n % len(b64)] for n in numbers]))
            result.record(outcome, elapsed)
            if resp is not None and resp.status_code == 200:
                acknowledged.update(r["key"] for r in resp.json()["results"] if r["indexed"])
            if resp is None:  # no answer: the server is gone
                return

    async def killer() -> None:
        while len(acknowledged) < kill_after and not all(t.done() for t in tasks):
            await asyncio.sleep(0.005)
        n = await asyncio.to_thread(server.kill9)
        killed.set()
        result.notes.append(f"kill -9 of {n} processes after {len(acknowledged)} acknowledged items")

    limits = httpx.Limits(max_connections=writers, max_keepalive_connections=writers)
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as client:
        tasks = [asyncio.ensure_future(writer(client)) for _ in range(writers)]
        await asyncio.gather(killer(), *tasks)
    return acknowledged


def seed_index(url: str, images: list[bytes]) -> None:
    """Create INDEX with two items, so the bad searches meet a real index."""
    import httpx

    b64 = [base64.b64encode(img).decode() for img in images[:2]]
    resp = httpx.post(f"{url}/index_images", json={"images_base64": b64, "keys": ["seed-0", "seed-1"], "index": INDEX},
                      timeout=REQUEST_TIMEOUT_S, trust_env=False)
    if resp.status_code != 200 or resp.json()["indexed"] != 2:
        raise RuntimeError(f"could not create the index {INDEX!r}: {resp.status_code} {resp.text[:300]}")


def missing_keys(url: str, keys: list[str], chunk: int = 1000) -> tuple[list[str], list[str]]:
    """(missing keys, problems) as the restarted server reports them through POST /get."""
    import httpx

    missing, problems = [], []
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        for start in range(0, len(keys), chunk):
            part = keys[start:start + chunk]
            resp = client.post("/get", json={"keys": part, "index": INDEX})
            if resp.status_code != 200:
                problems.append(f"/get answered {resp.status_code}: {resp.text[:200]}")
                missing.extend(part)
                continue
            missing.extend(resp.json()["missing"])
    return missing, problems


@dataclass(frozen=True)
class Plan:
    max_in_flight: int
    baseline_requests: int
    overload_requests: int
    bad_rounds: int
    index_writers: int
    index_batch: int
    kill_after_items: int

    @property
    def overload_clients(self) -> int:
        return 10 * self.max_in_flight


def make_plan(quick: bool, max_in_flight: int | None) -> Plan:
    limit = max_in_flight or (16 if quick else 64)
    if quick:
        return Plan(limit, baseline_requests=6 * limit, overload_requests=20 * limit, bad_rounds=2,
                    index_writers=4, index_batch=4, kill_after_items=60)
    return Plan(limit, baseline_requests=20 * limit, overload_requests=40 * limit, bad_rounds=10,
                index_writers=8, index_batch=8, kill_after_items=800)


def ensure_models(profile: str) -> None:
    from models import list_models
    from models.store import find

    missing = [s.key for s in list_models(profile) if find(s) is None]
    if missing:
        print(f"models not in the store: {missing}; importing (image-embed import-models --profile {profile})")
        subprocess.run([sys.executable, "-m", "cli", "import-models", "--profile", profile], cwd=ROOT, check=True)


def server_env(profile: str, plan: Plan, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_EMBED_")}
    env.update(
        IMAGE_EMBED_PROFILE=profile,
        IMAGE_EMBED_MAX_IN_FLIGHT=str(plan.max_in_flight),
        IMAGE_EMBED_DATA_DIR=str(data_dir),
        IMAGE_EMBED_URL_POLICY="off",  # nothing here needs a URL; nothing is ever fetched
        BENTOML_CONFIG=str(ROOT / "configuration.yaml"),
        BENTOML_DO_NOT_TRACK="true",
        HF_HUB_OFFLINE="1",
    )
    return env


def run_on(server, name: str, coro_factory) -> ScenarioResult:
    with MemorySampler(server) as sampler:
        result = asyncio.run(coro_factory())
    result.name, result.peak_memory_bytes = name, sampler.peak
    result.notes.append(f"latency by outcome: {latency_by_outcome(result)}")
    if result.by_label:
        result.notes.append(f"outcome by kind of input: {outcomes_by_label(result)}")
    print(f"  {name}: {format_outcomes(result.outcomes)}", flush=True)
    return result


def run(args: argparse.Namespace) -> tuple[list[ScenarioResult], dict]:
    from bench import serve_launcher

    plan = make_plan(args.quick, args.max_in_flight)
    os.environ["IMAGE_EMBED_PROFILE"] = args.profile
    ensure_models(args.profile)
    shared = serve_launcher.shared_home()
    data_dir = Path(tempfile.mkdtemp(prefix="load-report-data-"))
    env = server_env(args.profile, plan, data_dir)
    images = test_images(8)
    facts = {"profile": args.profile, "quick": args.quick, "max_in_flight": plan.max_in_flight,
             "overload_clients": plan.overload_clients, "cpus": os.cpu_count(), "python": platform.python_version()}
    results: list[ScenarioResult] = []
    servers = []
    try:
        print(f"starting bentoml serve (profile {args.profile}, IMAGE_EMBED_MAX_IN_FLIGHT={plan.max_in_flight})", flush=True)
        server = serve_launcher.start(env, serve_launcher.private_home(shared))
        servers.append(server)
        encode = encode_request(images)
        asyncio.run(load(server.url, encode, 2 * plan.max_in_flight, plan.max_in_flight, "warm-up"))
        results.append(run_on(server, "baseline", lambda: load(
            server.url, encode, plan.baseline_requests, plan.max_in_flight, "baseline")))
        results.append(run_on(server, "overload", lambda: load(
            server.url, encode, plan.overload_requests, plan.overload_clients, "overload")))
        refused = access_durations_ms(server.log_path.read_text(errors="replace").splitlines(), 429)
        results[-1].notes.append(
            f"429 as the server timed them (access log, {len(refused)} lines): "
            f"p50 {percentile(refused, 50) or 0:.1f} ms, p99 {percentile(refused, 99) or 0:.1f} ms"
        )
        seed_index(server.url, images)
        bad = bad_requests(images[0]) * plan.bad_rounds
        results.append(run_on(server, "bad_input", lambda: load(server.url, bad.__getitem__, len(bad), 8, "bad_input")))
        results.append(run_on(server, "recovery", lambda: load(
            server.url, encode, plan.baseline_requests, plan.max_in_flight, "recovery")))

        kill = ScenarioResult("kill9")
        with MemorySampler(server) as sampler:
            acknowledged = asyncio.run(index_until_killed(
                server, images, writers=plan.index_writers, batch=plan.index_batch,
                kill_after=plan.kill_after_items, result=kill))
            sampler.server = None
            print(f"  kill9: {len(acknowledged)} items acknowledged, server killed; restarting on the same data", flush=True)
            server = serve_launcher.start(env, serve_launcher.private_home(shared))
            servers.append(server)
            sampler.server = server
            missing, problems = missing_keys(server.url, sorted(acknowledged))
        kill.peak_memory_bytes = sampler.peak
        kill.items_lost = len(missing)
        kill.notes.append(f"latency by outcome: {latency_by_outcome(kill)}")
        kill.notes += problems + [f"{len(acknowledged)} acknowledged, {len(missing)} missing after restart"]
        print(f"  kill9: {format_outcomes(kill.outcomes)}; {kill.notes[-1]}", flush=True)
        results.append(kill)
    finally:
        for srv in servers:
            srv.stop()
    return results, facts


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def report_markdown(results: list[ScenarioResult], facts: dict, problems: list[str], command: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Load report",
        "",
        f"`{command}` at {when}, commit {git_commit()}.",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()) + ".",
        "",
        render_table(results),
        "",
    ]
    for r in results:
        lines += [f"- {r.name}: {note}" for note in r.notes]
    lines += ["", "Result: " + ("all checks passed." if not problems else "FAILED: " + "; ".join(problems)), ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("tiny", "bench"), default="tiny", help="model profile (default: tiny)")
    p.add_argument("--quick", action="store_true", help="fewer requests and a lower in-flight limit (16): minutes")
    p.add_argument("--max-in-flight", type=int, help="IMAGE_EMBED_MAX_IN_FLIGHT of the server (default: 64, 16 with --quick)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown output (default: {DEFAULT_OUT.relative_to(ROOT)})")
    args = p.parse_args(argv)
    if args.max_in_flight is not None and args.max_in_flight < 1:
        p.error("--max-in-flight must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    results, facts = run(args)
    problems = [p for r in results for p in check(r)]
    command = "python -m bench --scenario load " + " ".join(sys.argv[1:] if argv is None else argv)
    markdown = report_markdown(results, facts, problems, command.strip())
    print("\n" + markdown)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown)
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
