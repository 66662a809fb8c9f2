"""The hub preflight: offline mode and unreachable endpoints fail fast. Loopback only."""

from __future__ import annotations

import socket
import time

import pytest

from models.hub import WeightsDownloadError, ensure_hub_reachable, hub_endpoint


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listening_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


@pytest.mark.parametrize("value", ["1", "true", "yes", " 1 "])
def test_offline_mode_raises_at_once(monkeypatch, listening_port, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listening_port}")  # reachable, yet refused
    started = time.monotonic()
    with pytest.raises(WeightsDownloadError, match="HF_HUB_OFFLINE") as info:
        ensure_hub_reachable("the clip weights")
    assert time.monotonic() - started < 0.5
    assert "the clip weights" in str(info.value)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "http://127.0.0.1:{port}", "http://[::1]:{port}/"])
def test_unreachable_endpoint_raises_quickly(monkeypatch, endpoint):
    if endpoint.startswith("http://[::1]") and not socket.has_ipv6:
        pytest.skip("no IPv6")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", endpoint.format(port=closed_port()))
    started = time.monotonic()
    with pytest.raises(WeightsDownloadError, match="is unreachable") as info:
        ensure_hub_reachable("weights")
    assert time.monotonic() - started < 3.0
    assert info.value.__cause__ is None and "cannot download weights" in str(info.value)


def test_reachable_endpoint_passes(monkeypatch, listening_port):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listening_port}")
    assert ensure_hub_reachable("weights") is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert ensure_hub_reachable("weights") is None


def test_message_names_host_and_port(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("HF_HUB_OFFLINE", "")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(WeightsDownloadError, match=f"127.0.0.1:{port} is unreachable"):
        ensure_hub_reachable("weights")


def test_hub_endpoint(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub_endpoint() == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8080/")
    assert hub_endpoint() == "http://127.0.0.1:8080"


def test_weights_download_error_is_a_runtime_error():
    assert issubclass(WeightsDownloadError, RuntimeError)


@pytest.mark.parametrize(
    ("endpoint", "address"),
    [
        (None, ("huggingface.co", 443)),
        ("https://hub.example.test", ("hub.example.test", 443)),
        ("http://mirror.example.test", ("mirror.example.test", 80)),
        ("http://mirror.example.test:8081/", ("mirror.example.test", 8081)),
    ],
)
def test_default_ports(monkeypatch, endpoint, address):
    """Which address is tried, without connecting anywhere: the connection is faked."""
    import models.hub

    tried = []

    def fake_connect(addr, timeout):
        tried.append((addr, timeout))
        raise OSError("faked")

    monkeypatch.setattr(models.hub.socket, "create_connection", fake_connect)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if endpoint is None:
        monkeypatch.delenv("HF_ENDPOINT", raising=False)
    else:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(WeightsDownloadError, match="faked"):
        ensure_hub_reachable("weights")
    assert tried == [(address, models.hub.HUB_TIMEOUT_S)]
