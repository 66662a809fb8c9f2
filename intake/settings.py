"""Limits and the URL allow-list of the image intake, read from the environment.

    IMAGE_EMBED_MAX_IMAGE_BYTES      largest upload / download / decoded base64 (default 20 MiB)
    IMAGE_EMBED_MAX_IMAGE_PIXELS     largest width x height decoded (default 50 M, a 48 MP photo)
    IMAGE_EMBED_MIN_IMAGE_SIDE       smallest width or height accepted (default 16 px)
    IMAGE_EMBED_FETCH_CONNECT_TIMEOUT  seconds to connect to an image URL (default 5)
    IMAGE_EMBED_FETCH_TIMEOUT        seconds for a whole download, redirects included (default 20)
    IMAGE_EMBED_FETCH_MAX_REDIRECTS  redirect hops followed, each re-checked (default 5)
    IMAGE_EMBED_URL_ALLOWLIST        comma-separated hosts, IPs or CIDR networks, each optionally
                                     with :port, admitted even when they resolve to private,
                                     loopback or link-local addresses (default: none)
    IMAGE_EMBED_URL_POLICY           which image URLs the server fetches (default `public`):
                                     public     any globally routable address, plus the allow-list
                                     allowlist  only the allow-list: a host name not on it is refused
                                                before any DNS lookup (private deployments, tests)
                                     off        no URL inputs at all (uploads and base64 only)
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

MiB = 1024 * 1024


class IntakeSettingsError(ValueError):
    pass


URL_POLICIES = ("public", "allowlist", "off")


@dataclass(frozen=True, kw_only=True)
class AllowRule:
    """One allow-list entry: a host name or a network, optionally pinned to a port."""

    host: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def admits(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host.lower().rstrip(".") == self.host
        return self.network is not None and ip.version == self.network.version and ip in self.network

    @classmethod
    def parse(cls, entry: str) -> "AllowRule":
        text = entry.strip()
        port = None
        if text.startswith("["):  # [v6]:port or [v6/len]:port
            inner, _, rest = text[1:].partition("]")
            text, port = inner, _parse_port(rest.lstrip(":"), entry) if rest else None
        elif text.count(":") == 1:  # host:port or v4:port (bare IPv6 has several colons)
            text, raw_port = text.split(":")
            port = _parse_port(raw_port, entry)
        try:
            return cls(network=ipaddress.ip_network(text, strict=False), port=port)
        except ValueError:
            pass
        if not text or "/" in text:
            raise IntakeSettingsError(f"IMAGE_EMBED_URL_ALLOWLIST entry {entry!r} is not a host, IP or network")
        return cls(host=text.lower().rstrip("."), port=port)


def _parse_port(raw: str, entry: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise IntakeSettingsError(f"IMAGE_EMBED_URL_ALLOWLIST entry {entry!r} has an invalid port")
    return int(raw)


def env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise IntakeSettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise IntakeSettingsError(f"{name}={value} must be >= {minimum}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise IntakeSettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise IntakeSettingsError(f"{name}={value} must be positive")
    return value


@dataclass(frozen=True, kw_only=True)
class IntakeSettings:
    max_image_bytes: int = 20 * MiB
    max_pixels: int = 50_000_000
    min_side: int = 16
    connect_timeout_s: float = 5.0
    fetch_timeout_s: float = 20.0
    max_redirects: int = 5
    max_url_length: int = 2048
    allowlist: tuple[AllowRule, ...] = field(default_factory=tuple)
    url_policy: str = "public"

    def __post_init__(self) -> None:
        if self.url_policy not in URL_POLICIES:
            raise IntakeSettingsError(
                f"IMAGE_EMBED_URL_POLICY={self.url_policy!r} is not one of {', '.join(URL_POLICIES)}"
            )

    @classmethod
    def from_env(cls) -> "IntakeSettings":
        raw_allow = os.environ.get("IMAGE_EMBED_URL_ALLOWLIST", "")
        d = cls()  # the defaults
        return cls(
            max_image_bytes=env_int("IMAGE_EMBED_MAX_IMAGE_BYTES", d.max_image_bytes),
            max_pixels=env_int("IMAGE_EMBED_MAX_IMAGE_PIXELS", d.max_pixels),
            min_side=env_int("IMAGE_EMBED_MIN_IMAGE_SIDE", d.min_side),
            connect_timeout_s=_float("IMAGE_EMBED_FETCH_CONNECT_TIMEOUT", d.connect_timeout_s),
            fetch_timeout_s=_float("IMAGE_EMBED_FETCH_TIMEOUT", d.fetch_timeout_s),
            max_redirects=env_int("IMAGE_EMBED_FETCH_MAX_REDIRECTS", d.max_redirects, minimum=0),
            allowlist=tuple(AllowRule.parse(e) for e in raw_allow.split(",") if e.strip()),
            url_policy=os.environ.get("IMAGE_EMBED_URL_POLICY", "").strip().lower() or d.url_policy,
        )
