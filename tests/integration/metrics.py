"""Reading the Prometheus text of /metrics: BentoML's adaptive batching, our histograms."""

from __future__ import annotations

import re

import httpx

_SAMPLE = re.compile(r'^bentoml_service_adaptive_batch_size_(bucket|count|sum)\{(?P<labels>[^}]*)\} (?P<value>\S+)$')


def batch_stats(base_url: str, runner: str, method: str) -> dict[str, float]:
    """{"count": batches run, "sum": requests in them, "le_1": batches of a single request}."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    stats = {"count": 0.0, "sum": 0.0, "le_1": 0.0}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = match["labels"]
        if f'runner_name="{runner}"' not in labels or f'method_name="{method}"' not in labels:
            continue
        kind, value = match.group(1), float(match["value"])
        if kind == "count":
            stats["count"] += value
        elif kind == "sum":
            stats["sum"] += value
        elif 'le="1.0"' in labels:
            stats["le_1"] += value
    return stats


def histogram(base_url: str, name: str, **labels: str) -> dict[str, float]:
    """{"count", "sum"} of a histogram in /metrics, summed over the series that carry `labels`
    (and any others, such as BentoML's worker index)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    sample = re.compile(rf"^{re.escape(name)}_(count|sum)\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)$")
    stats = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        match = sample.match(line)
        if match and all(f'{k}="{v}"' in match["labels"] for k, v in labels.items()):
            stats[match.group(1)] += float(match["value"])
    return stats


def histogram_at_most(base_url: str, name: str, le: str, **labels: str) -> float:
    """Observations of a histogram in /metrics at most `le` (its bucket, e.g. "0.25"), summed
    over the series that carry `labels`."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    sample = re.compile(rf"^{re.escape(name)}_bucket\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)$")
    total = 0.0
    for line in text.splitlines():
        match = sample.match(line)
        if match and f'le="{le}"' in match["labels"] and all(f'{k}="{v}"' in match["labels"] for k, v in labels.items()):
            total += float(match["value"])
    return total
