"""bench/load.py (`python -m bench --scenario load`) without a server: percentiles, outcome counting, the rules each
scenario must meet, the Markdown table, the plan and the bad inputs. The served run is the
script itself (docs/operations.md, "Load report")."""

from __future__ import annotations

import importlib
import json
from collections import Counter

import numpy as np
import pytest


def load(name: str):
    module = importlib.import_module(f"bench.{name}")
    return module


@pytest.fixture(scope="module")
def report():
    return load("load")


@pytest.fixture(scope="module")
def stats(report):
    return load("load_stats")


OVERLOADED = json.dumps({"error": "overloaded", "detail": "full"}).encode()


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 100])
def test_percentile_matches_numpy(stats, q):
    values = list(np.random.default_rng(q).exponential(size=37))
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edges(stats):
    assert stats.percentile([], 50) is None
    assert stats.percentile([3.0], 99) == 3.0
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # unsorted input
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_outcomes(stats):
    o = stats.outcome_of
    assert o(200, {}, b"[0.1, 0.2]", "embedding") == "200"
    assert o(200, {}, b'{"error": "x"}', "embedding") == "200-bad"
    assert o(200, {}, b"[]", "embedding") == "200-bad"
    assert o(200, {}, b"whatever") == "200"
    assert o(429, {"Retry-After": "1"}, OVERLOADED) == "429"
    assert o(429, {}, OVERLOADED) == "429-bad"  # no Retry-After
    assert o(429, {"retry-after": "1"}, b'{"error": "Too many requests"}') == "429-bad"  # BentoML's own
    assert o(503, {"retry-after": "1"}, b'{"error": "model_unavailable", "detail": "d"}') == "503"
    assert o(503, {}, b'{"error": "model_unavailable"}') == "503-bad"
    assert o(400, {}, b'{"error": "corrupt_image", "detail": "d"}') == "400"
    assert o(400, {}, b'[{"error": "as a list"}]') == "400-bad"
    assert o(404, {}, b"Not Found") == "404-bad"
    assert o(500, {}, b'{"error": "An unexpected error"}') == "500"


def test_count_5xx(stats):
    assert stats.count_5xx(Counter({"200": 5, "500": 2, "503-bad": 1, "429": 9, "ReadError": 3})) == 3


def result(stats, name, outcomes, **kw):
    return stats.ScenarioResult(name, outcomes=Counter(outcomes), **kw)


def test_rules_pass(stats):
    ok = [
        result(stats, "baseline", {"200": 10}),
        result(stats, "overload", {"200": 10, "429": 90}),
        result(stats, "bad_input", {"400": 20, "413": 1, "415": 2}),
        result(stats, "recovery", {"200": 10}),
        result(stats, "kill9", {"200": 10, "ReadError": 4}, items_lost=0),
    ]
    assert [p for r in ok for p in stats.check(r)] == []


@pytest.mark.parametrize(
    "name, outcomes, lost, needle",
    [
        ("baseline", {"200": 9, "429": 1}, None, "every request must succeed"),
        ("recovery", {"200": 9, "ConnectError": 1}, None, "every request must succeed"),
        ("overload", {"200": 9, "429": 90, "500": 1}, None, "5xx"),
        ("overload", {"200": 100}, None, "never refused"),
        ("overload", {"200": 9, "429-bad": 9}, None, "outside the contract"),
        ("bad_input", {"400": 9, "200": 1}, None, "4xx"),
        ("bad_input", {"400": 9, "400-bad": 1}, None, "outside the contract"),
        ("kill9", {"200": 9}, 2, "2 acknowledged item(s) lost"),
        ("kill9", {"200": 9}, None, "never checked"),
        ("baseline", {}, None, "no request"),
    ],
)
def test_rules_fail(stats, name, outcomes, lost, needle):
    problems = stats.check(result(stats, name, outcomes, items_lost=lost))
    assert problems and any(needle in p for p in problems), problems
    assert all(p.startswith(f"{name}: ") for p in problems)


def test_record_and_summaries(stats):
    r = stats.ScenarioResult("bad_input")
    for outcome, seconds, label in [("400", 0.010, "a"), ("400", 0.030, "a"), ("415", 0.002, "b"),
                                    ("ReadError", None, "c"), ("400", 0.020, "d"), ("413", 0.5, "d")]:
        r.record(outcome, seconds, label)
    assert r.requests == 6 and r.outcomes == Counter({"400": 3, "415": 1, "413": 1, "ReadError": 1})
    assert r.latencies_s == [0.010, 0.030, 0.002, 0.020, 0.5]  # no answer, no latency
    assert stats.latency_by_outcome(r) == "400: p50 20 ms, p99 30 ms; 413: p50 500 ms, p99 500 ms; 415: p50 2 ms, p99 2 ms"
    assert stats.outcomes_by_label(r) == "400: a; 400: 1, 413: 1: d; 415: b; ReadError: c"


def test_table(stats):
    baseline = result(stats, "baseline", {"200": 3}, peak_memory_bytes=512 * 2**20)
    baseline.timings = [("200", 0.010), ("200", 0.020), ("200", 0.030)]
    rows = [baseline, result(stats, "kill9", {"ReadError": 2, "200": 5, "503": 1}, items_lost=0)]
    lines = stats.render_table(rows).splitlines()
    assert lines[0] == "| scenario | requests | outcomes by status | p50 | p99 | peak memory | items lost | 5xx |"
    assert lines[1].count("|") == lines[0].count("|")
    assert lines[2] == "| baseline | 3 | 200: 3 | 20 ms | 30 ms | 512 MiB | - | 0 |"
    # statuses first, then exception names; no latency, no memory: "-"
    assert lines[3] == "| kill9 | 8 | 200: 5, 503: 1, ReadError: 2 | - | - | - | 0 | 1 |"


def test_plan(report):
    quick = report.make_plan(True, None)
    assert quick.max_in_flight == 16 and quick.overload_clients == 160
    full = report.make_plan(False, None)
    assert full.max_in_flight == 64 and full.overload_clients == 640  # the gateway's default limit
    assert report.make_plan(False, 5).overload_clients == 50


def test_bad_inputs_are_varied_and_loopback_only(report):
    reqs = report.bad_requests(b"\xff\xd8\xff\xe0jpeg bytes")
    labels = [r.label for r in reqs]
    assert len(labels) == len(set(labels)) >= 20
    assert {"/encode_image", "/encode_text", "/search_text", "/analyze"} <= {r.path for r in reqs}
    assert all(r.path.startswith("/") for r in reqs)  # relative: sent to the server's own 127.0.0.1 URL
    assert any("top_k" in r.label for r in reqs) and any("unicode" in r.label for r in reqs)


def test_args(report):
    args = report.parse_args(["--profile", "tiny", "--quick"])
    assert args.profile == "tiny" and args.quick and args.max_in_flight is None
    with pytest.raises(SystemExit):
        report.parse_args(["--profile", "default"])  # needs network weights: not offered
    with pytest.raises(SystemExit):
        report.parse_args(["--max-in-flight", "0"])


def test_access_durations(stats):
    lines = [
        '{"ts":"t","event":"access","request_id":"a","status":429,"duration_ms":0.4}',
        '{"ts":"t","event":"access","request_id":"b","status":200,"duration_ms":80.0}',
        "INFO some BentoML line",
        '{"ts":"t","event":"access","request_id":"c","status":429,"duration_ms":1.5}',
        '{"ts":"t","event":"access", broken',
    ]
    assert stats.access_durations_ms(lines, 429) == [0.4, 1.5]
    assert stats.access_durations_ms(lines, 500) == []
