"""The pure parts of bench/load.py: outcomes, percentiles, rules, the Markdown table.

No I/O here, so tests/bench/test_load.py checks them without a server.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); None if empty."""
    data = sorted(values)
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} is not within 0..100")
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def outcome_of(status: int, headers: dict[str, str], body: bytes, expect: str = "any") -> str:
    """One answer as an outcome key: its status, with `-bad` when it breaks the contract:
    a 4xx/5xx that is not a JSON object with `error`, a 429/503 without Retry-After, a 429 that
    is not `overloaded`, or (expect="embedding") a 200 that is not a list of numbers."""
    key = str(status)
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if status == 200:
        if expect == "embedding" and not (
            isinstance(data, list) and data and all(isinstance(v, (int, float)) for v in data)
        ):
            return key + "-bad"
        return key
    if status >= 400:
        if not (isinstance(data, dict) and isinstance(data.get("error"), str)):
            return key + "-bad"
        lower = {k.lower(): v for k, v in headers.items()}
        if status in (429, 503) and "retry-after" not in lower:
            return key + "-bad"
        if status == 429 and data["error"] != "overloaded":
            return key + "-bad"
    return key


def access_durations_ms(lines: Iterable[str], status: int) -> list[float]:
    """duration_ms of the gateway's JSON access-log lines (gateway/access_log.py) with `status`."""
    out = []
    for line in lines:
        if not line.startswith("{") or '"event":"access"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("status") == status:
            out.append(float(record["duration_ms"]))
    return out


def count_5xx(outcomes: Counter) -> int:
    return sum(n for key, n in outcomes.items() if key[:1] == "5")


@dataclass
class ScenarioResult:
    name: str
    outcomes: Counter = field(default_factory=Counter)
    timings: list[tuple[str, float]] = field(default_factory=list)  # (outcome, seconds) of each answer
    by_label: dict[str, Counter] = field(default_factory=dict)  # outcomes of each kind of request
    peak_memory_bytes: int = 0
    items_lost: int | None = None
    notes: list[str] = field(default_factory=list)

    def record(self, outcome: str, seconds: float | None, label: str = "") -> None:
        """One request: its outcome, and its latency when an HTTP answer came (None: none came)."""
        self.outcomes[outcome] += 1
        if seconds is not None:
            self.timings.append((outcome, seconds))
        if label:
            self.by_label.setdefault(label, Counter())[outcome] += 1

    @property
    def latencies_s(self) -> list[float]:
        return [seconds for _, seconds in self.timings]

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def server_errors(self) -> int:
        return count_5xx(self.outcomes)


def _order(key: str) -> tuple[int, str]:
    return (0, key) if key[:1].isdigit() else (1, key)  # statuses first, then exception names


def format_outcomes(outcomes: Counter) -> str:
    return ", ".join(f"{key}: {outcomes[key]}" for key in sorted(outcomes, key=_order)) or "-"


def latency_by_outcome(result: ScenarioResult) -> str:
    """p50/p99 of each outcome apart, e.g. fast 429 refusals next to slow 200s."""
    groups: dict[str, list[float]] = {}
    for outcome, seconds in result.timings:
        groups.setdefault(outcome, []).append(seconds)
    return "; ".join(
        f"{key}: p50 {_ms(percentile(groups[key], 50))}, p99 {_ms(percentile(groups[key], 99))}"
        for key in sorted(groups, key=_order)
    )


def outcomes_by_label(result: ScenarioResult) -> str:
    """Which kinds of request got which outcome: `400: a, b; 415: c`."""
    groups: dict[str, list[str]] = {}
    for label, outcomes in result.by_label.items():
        key = next(iter(outcomes)) if len(outcomes) == 1 else format_outcomes(outcomes)
        groups.setdefault(key, []).append(label)
    return "; ".join(f"{key}: {', '.join(groups[key])}" for key in sorted(groups, key=_order))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n else "-"


def render_table(results: list[ScenarioResult]) -> str:
    rows = [
        "| scenario | requests | outcomes by status | p50 | p99 | peak memory | items lost | 5xx |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lost = "-" if r.items_lost is None else str(r.items_lost)
        rows.append(
            f"| {r.name} | {r.requests} | {format_outcomes(r.outcomes)} | {_ms(percentile(r.latencies_s, 50))} "
            f"| {_ms(percentile(r.latencies_s, 99))} | {_mib(r.peak_memory_bytes)} | {lost} | {r.server_errors} |"
        )
    return "\n".join(rows)


def check(result: ScenarioResult) -> list[str]:
    """The rules a scenario must meet (see the module docstring); one message per broken rule."""
    problems = []
    o = result.outcomes
    if result.requests == 0:
        problems.append("no request was sent")
    if result.server_errors:
        problems.append(f"{result.server_errors} answer(s) were 5xx")
    if result.items_lost:
        problems.append(f"{result.items_lost} acknowledged item(s) lost")
    bad = sorted(k for k in o if k.endswith("-bad"))
    if bad:
        problems.append(f"answers outside the contract: {', '.join(bad)}")
    if result.name in ("baseline", "recovery") and set(o) - {"200"}:
        problems.append("every request must succeed (200)")
    elif result.name == "overload":
        if set(o) - {"200", "429"}:
            problems.append("only 200 and 429 allowed")
        if not o.get("429"):
            problems.append("the admission limit never refused anything")
    elif result.name == "bad_input" and any(not k.startswith("4") for k in o):
        problems.append("every bad input must get a 4xx")
    elif result.name == "kill9" and result.items_lost is None:
        problems.append("the items were never checked")
    return [f"{result.name}: {p}" for p in problems]
