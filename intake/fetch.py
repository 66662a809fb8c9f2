"""Fetching images from http(s) URLs without becoming an SSRF proxy.

For every hop (the first URL and each redirect):
- only http and https are allowed;
- the host is resolved here, and every address it resolves to must be globally routable:
  loopback, private, link-local (cloud metadata at 169.254.169.254), shared, reserved,
  multicast and unspecified addresses are refused, also when written as IPv4-mapped IPv6
  (::ffff:127.0.0.1), NAT64 (64:ff9b::7f00:1) or numeric forms (2130706433, 0x7f.1), which
  the resolver turns into the address that is then checked;
- the connection goes to the address that was checked (Host header and TLS SNI keep the
  name), so a DNS answer that changes between check and connect cannot slip through;
- an allow-list (IMAGE_EMBED_URL_ALLOWLIST) admits named internal hosts or networks;
- IMAGE_EMBED_URL_POLICY=allowlist admits nothing else, and refuses a host name that is not
  on the list before resolving it (no DNS query leaves the server for it);
  IMAGE_EMBED_URL_POLICY=off refuses every URL.
Downloads have a connect timeout, a total deadline, and a size cap enforced while streaming.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin

import anyio
import httpx

from config.sections import IntakeSettings

from .errors import ImageTooLarge, URLFetchFailed, URLNotAllowed, URLTimeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
USER_AGENT = "image-embed-server/1.0 (image fetcher)"
MAX_URL_LENGTH = 2048  # characters: a longer image URL is refused before any lookup
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class VettedTarget:
    url: httpx.URL  # what the caller asked for
    host: str
    port: int
    ip: IPAddress  # where we will connect

    def connect_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.ip))

    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def effective_ip(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address really reaches (mapped, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(ip: IPAddress) -> bool:
    ip = effective_ip(ip)
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def parse_url(raw: str, settings: IntakeSettings) -> httpx.URL:
    if settings.url_policy == "off":
        raise URLNotAllowed("this server does not fetch image URLs (IMAGE_EMBED_URL_POLICY=off); upload the image")
    if len(raw) > MAX_URL_LENGTH:
        raise URLNotAllowed(f"the URL is {len(raw)} characters; the limit is {MAX_URL_LENGTH}")
    try:
        url = httpx.URL(raw.strip())
    except Exception as exc:
        raise URLNotAllowed(f"not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        shown = url.scheme or "none"
        raise URLNotAllowed(f"only http and https URLs are allowed (scheme: {shown})")
    if not url.host:
        raise URLNotAllowed("the URL has no host")
    return url


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise URLFetchFailed(f"could not resolve host {host!r}: {exc.strerror or exc}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise URLFetchFailed(f"host {host!r} has no addresses")
    return addresses


async def vet(url: httpx.URL, settings: IntakeSettings) -> VettedTarget:
    """Check one hop; the returned target says where to connect."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    only_listed = settings.url_policy == "allowlist"
    if only_listed and not _may_be_listed(host, port, settings):
        raise URLNotAllowed(
            f"refusing to fetch from {host}: this server only fetches from the hosts in "
            "IMAGE_EMBED_URL_ALLOWLIST (IMAGE_EMBED_URL_POLICY=allowlist)"
        )
    addresses = await resolve(host, port)
    for ip in addresses:
        admitted = any(rule.admits(host, ip, port) for rule in settings.allow_rules)
        if only_listed and not admitted:
            raise URLNotAllowed(
                f"refusing to fetch from {host} ({ip}): not in IMAGE_EMBED_URL_ALLOWLIST (IMAGE_EMBED_URL_POLICY=allowlist)"
            )
        if not admitted and not is_public(ip):
            shown = host if str(ip) == host else f"{host} ({ip})"
            raise URLNotAllowed(
                f"refusing to fetch from {shown}: not a public address (loopback, private, link-local "
                "or reserved); an operator can admit internal hosts with IMAGE_EMBED_URL_ALLOWLIST"
            )
    return VettedTarget(url=url, host=host, port=port, ip=addresses[0])


def _may_be_listed(host: str, port: int, settings: IntakeSettings) -> bool:
    """Whether `host` can pass the allow-list, decided without DNS.

    An IP literal is checked against the network rules; a name must be on the list by name.
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        return any(rule.host == name and rule.port in (None, port) for rule in settings.allow_rules)
    return any(rule.admits(host, ip, port) for rule in settings.allow_rules)


def make_client(settings: IntakeSettings) -> httpx.AsyncClient:
    """The fetcher's HTTP client: no proxies from the environment, no automatic redirects."""
    timeout = httpx.Timeout(settings.fetch_timeout, connect=settings.fetch_connect_timeout)
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT, "Accept": "image/*"},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
    )


async def fetch_image_bytes(raw_url: str, settings: IntakeSettings, client: httpx.AsyncClient) -> bytes:
    """Download `raw_url` under the rules above, or raise a ClientError."""
    url = parse_url(raw_url, settings)
    try:
        with anyio.fail_after(settings.fetch_timeout):
            for _hop in range(settings.fetch_max_redirects + 1):
                target = await vet(url, settings)
                location = await _get(target, settings, client)
                if isinstance(location, bytes):
                    return location
                url = parse_url(urljoin(str(url), location), settings)
    except TimeoutError:
        raise URLTimeout(f"fetching {raw_url} took longer than {settings.fetch_timeout:g} s") from None
    raise URLFetchFailed(f"more than {settings.fetch_max_redirects} redirects fetching {raw_url}")


async def _get(target: VettedTarget, settings: IntakeSettings, client: httpx.AsyncClient) -> bytes | str:
    """One request: the body, or the Location of a redirect."""
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    shown = target.host_header()
    try:
        async with client.stream(
            "GET", target.connect_url(), headers={"Host": target.host_header()}, extensions=extensions
        ) as resp:
            if resp.is_redirect:
                return resp.headers["location"]
            if resp.status_code != 200:
                raise URLFetchFailed(f"{shown} answered HTTP {resp.status_code}")
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > settings.max_image_bytes:
                raise ImageTooLarge(
                    f"{shown} declares {int(declared):,} bytes; the limit is {settings.max_image_bytes:,} bytes"
                )
            chunks, total = [], 0
            async for chunk in resp.aiter_bytes():
                total += len(chunk)
                if total > settings.max_image_bytes:
                    raise ImageTooLarge(f"the download from {shown} exceeds {settings.max_image_bytes:,} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException:
        raise URLTimeout(f"{shown} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise URLFetchFailed(f"could not download from {shown}: {type(exc).__name__}: {exc}") from None
