"""URL fetching: SSRF refusals, redirects re-checked per hop, timeouts and size caps.

Refused addresses are resolved locally and never connected to; the only server any test
here talks to is the loopback server in tests/localhttp.py, admitted by an allow-list in
the test's own settings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from config.sections import IntakeSettings
from intake.errors import ImageTooLarge, URLFetchFailed, URLNotAllowed, URLTimeout
from intake.fetch import fetch_image_bytes, is_public, make_client, parse_url, vet
from tests.conftest import encode, noise_image
from tests.localhttp import LocalHTTPServer


def fetch(url: str, settings: IntakeSettings) -> bytes:
    async def go() -> bytes:
        async with make_client(settings) as client:
            return await fetch_image_bytes(url, settings, client)

    return asyncio.run(go())


@pytest.fixture()
def local():
    with LocalHTTPServer() as server:
        yield server


def allow(server: LocalHTTPServer, **overrides) -> IntakeSettings:
    return IntakeSettings(url_allowlist=(f"127.0.0.1:{server.port}",), **overrides)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.255.254", "::1", "169.254.169.254", "10.0.0.1", "172.16.5.4", "192.168.1.1",
        "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "fe80::1", "fc00::1", "fd12:3456::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
        "192.0.2.1", "198.18.0.1", "240.0.0.1", "2001:db8::1",
    ],
)
def test_non_public_addresses(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://127.0.0.1:70/", "data:image/png;base64,AAAA",
     "javascript:alert(1)", "dict://127.0.0.1:11211/", "//example.com/a.jpg", "example.com/a.jpg"],
)
def test_only_http_and_https(url):
    with pytest.raises(URLNotAllowed, match="only http and https"):
        parse_url(url, IntakeSettings())


def test_overlong_url_is_refused():
    with pytest.raises(URLNotAllowed, match="characters"):
        parse_url("http://example.com/" + "a" * 3000, IntakeSettings())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x.jpg",
        "http://192.168.1.10/", "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0/", "http://localhost/",
        # numeric and mapped encodings of loopback and the metadata address
        "http://2130706433/", "http://0x7f000001/", "http://0x7f.1/", "http://127.1/", "http://017700000001/",
        "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::7f00:1]/",
        "http://[fe80::1]/", "http://[fc00::1]/", "https://127.0.0.1:8443/x.png",
    ],
)
def test_private_targets_are_refused_without_connecting(url):
    settings = IntakeSettings()
    with pytest.raises(URLNotAllowed) as err:
        fetch(url, settings)  # a connection attempt would fail differently (URLFetchFailed)
    assert err.value.status == 400
    assert "IMAGE_EMBED_URL_ALLOWLIST" in err.value.detail


def test_public_ip_literal_passes_the_check_without_a_request():
    target = asyncio.run(vet(parse_url("https://8.8.8.8/a.jpg", IntakeSettings()), IntakeSettings()))
    assert str(target.ip) == "8.8.8.8"
    assert target.connect_url().host == "8.8.8.8"


def test_unresolvable_host_is_a_fetch_failure(monkeypatch):
    async def no_such_host(self, host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # No real DNS query: the resolver is replaced by one that knows no names.
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", no_such_host)
    with pytest.raises(URLFetchFailed, match="resolve"):
        fetch("http://no-such-host.invalid/a.jpg", IntakeSettings())


class NoDNS:
    """A resolver that records the names asked for and fails the test if one is asked."""

    def __init__(self, monkeypatch):
        self.asked: list[str] = []
        real = asyncio.base_events.BaseEventLoop.getaddrinfo
        recorder = self

        async def getaddrinfo(self, host, *args, **kwargs):
            recorder.asked.append(host)
            return await real(self, host, *args, **kwargs)

        monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/a.jpg", "https://images.example.org/x.png", "http://8.8.8.8/a.jpg",
     "http://2130706433/", "http://localhost/a.jpg", "http://[2001:4860:4860::8888]/a.jpg"],
)
def test_allowlist_policy_refuses_unlisted_hosts_before_any_dns_lookup(monkeypatch, url):
    dns = NoDNS(monkeypatch)
    settings = IntakeSettings(url_policy="allowlist", url_allowlist=("127.0.0.1",))
    with pytest.raises(URLNotAllowed, match="IMAGE_EMBED_URL_POLICY=allowlist") as err:
        fetch(url, settings)
    assert err.value.status == 400
    assert dns.asked == []


def test_allowlist_policy_fetches_listed_hosts(local):
    data = encode(noise_image(20, 20), "PNG")
    url = local.serve("a.png", data)
    settings = IntakeSettings(url_policy="allowlist", url_allowlist=(f"127.0.0.1:{local.port}",))
    assert fetch(url, settings) == data
    by_name = IntakeSettings(url_policy="allowlist", url_allowlist=("localhost",))
    assert fetch(f"http://localhost:{local.port}/file?name=a.png", by_name) == data


def test_allowlist_policy_checks_every_redirect_hop(local):
    settings = IntakeSettings(url_policy="allowlist", url_allowlist=(f"127.0.0.1:{local.port}",))
    with pytest.raises(URLNotAllowed, match="IMAGE_EMBED_URL_POLICY=allowlist"):
        fetch(local.url("/redirect?to=http://example.com/a.jpg"), settings)
    assert [r["path"] for r in local.requests] == ["/redirect"]


def test_allowlist_policy_refuses_a_listed_name_resolving_outside_the_port_rule(local):
    settings = IntakeSettings(url_policy="allowlist", url_allowlist=(f"localhost:{local.port + 1}",))
    with pytest.raises(URLNotAllowed):
        fetch(local.serve("a.png", b"x"), settings)
    assert local.requests == []


def test_off_policy_refuses_every_url(local):
    url = local.serve("a.png", b"x")
    settings = IntakeSettings(url_policy="off", url_allowlist=("127.0.0.0/8",))
    with pytest.raises(URLNotAllowed, match="does not fetch image URLs") as err:
        fetch(url, settings)
    assert err.value.status == 400
    assert local.requests == []


def test_allow_listed_local_server_is_fetched(local):
    data = encode(noise_image(40, 30), "PNG")
    url = local.serve("a.png", data)
    assert fetch(url, allow(local)) == data
    assert local.requests[-1]["host"] == f"127.0.0.1:{local.port}"


def test_allow_rule_pinned_to_another_port_does_not_admit(local):
    url = local.serve("a.png", b"x")
    settings = IntakeSettings(url_allowlist=(f"127.0.0.1:{local.port + 1}",))
    with pytest.raises(URLNotAllowed):
        fetch(url, settings)
    assert local.requests == []


def test_allow_rule_by_host_name(local):
    data = encode(noise_image(20, 20), "PNG")
    local.serve("a.png", data)
    settings = IntakeSettings(url_allowlist=(f"localhost:{local.port}",))
    assert fetch(f"http://localhost:{local.port}/file?name=a.png", settings) == data
    assert local.requests[-1]["host"] == f"localhost:{local.port}"


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a.jpg", "http://[::1]:9/", "file:///etc/passwd"]
)
def test_redirect_to_a_refused_target_is_refused(local, target):
    with pytest.raises(URLNotAllowed):
        fetch(local.url(f"/redirect?to={target}"), allow(local))
    assert [r["path"] for r in local.requests] == ["/redirect"]


def test_redirects_are_followed_and_each_hop_checked(local):
    data = encode(noise_image(20, 20), "PNG")
    final = local.serve("a.png", data)
    hop2 = local.url(f"/redirect?status=301&to={final.replace('&', '%26')}")
    url = local.url(f"/redirect?to={hop2.replace('?', '%3F').replace('&', '%26').replace('=', '%3D')}")
    assert fetch(url, allow(local)) == data
    assert [r["path"] for r in local.requests] == ["/redirect", "/redirect", "/file"]


def test_redirect_loop_stops(local):
    with pytest.raises(URLFetchFailed, match="more than 3 redirects"):
        fetch(local.url("/loop"), allow(local, fetch_max_redirects=3))
    assert [r["path"] for r in local.requests] == ["/loop"] * 4


def test_a_server_that_never_answers_times_out(local):
    with pytest.raises(URLTimeout) as err:
        fetch(local.url("/slow?seconds=30"), allow(local, fetch_timeout=1.0, fetch_connect_timeout=1.0))
    assert err.value.status == 400


def test_streamed_body_over_the_cap_is_cut_off(local):
    with pytest.raises(ImageTooLarge) as err:
        fetch(local.url("/stream?size=3000000"), allow(local, max_image_bytes=1_000_000))
    assert err.value.status == 413


def test_declared_length_over_the_cap_is_refused_before_reading(local):
    with pytest.raises(ImageTooLarge, match="declares"):
        fetch(local.url("/declared?size=999999999"), allow(local, max_image_bytes=1_000_000))


def test_http_errors_are_reported(local):
    with pytest.raises(URLFetchFailed, match="HTTP 404"):
        fetch(local.url("/file?name=missing"), allow(local))


def test_connection_refused_is_a_fetch_failure():
    settings = IntakeSettings(url_allowlist=("127.0.0.0/8",), fetch_connect_timeout=2.0)
    with pytest.raises(URLFetchFailed, match="could not download"):
        fetch("http://127.0.0.1:9/a.jpg", settings)  # port 9 (discard) is closed here
