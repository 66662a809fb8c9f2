"""Reaching the Hugging Face hub, where every pretrained weight of the default profile lives.

A preflight check turns "no network" into one clear error in seconds, instead of the hub
client's minute of retries per file.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

HUB_TIMEOUT_S = 5.0


class WeightsDownloadError(RuntimeError):
    """Pretrained weights could not be fetched (no network, hub down, offline mode)."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def ensure_hub_reachable(what: str) -> None:
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        raise WeightsDownloadError(f"cannot download {what}: HF_HUB_OFFLINE is set")
    ensure_url_reachable(hub_endpoint(), what)


def ensure_url_reachable(url: str, what: str) -> None:
    """A TCP connection to `url`'s host within seconds, or a clear WeightsDownloadError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_TIMEOUT_S).close()
    except OSError as exc:
        raise WeightsDownloadError(f"cannot download {what}: {host}:{port} is unreachable ({exc})") from None
