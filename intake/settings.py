"""Limits and the URL allow-list of the image intake: a view of config.settings
(IMAGE_EMBED_MAX_IMAGE_*, _MIN_IMAGE_SIDE, _JPEG_DRAFT, _FETCH_*, _URL_ALLOWLIST, _URL_POLICY; declared,
validated and documented there and in docs/configuration.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from config.settings import URL_POLICIES, MiB, Settings, SettingsError, load_settings

__all__ = ["URL_POLICIES", "AllowRule", "IntakeSettings", "IntakeSettingsError", "MiB"]

IntakeSettingsError = SettingsError  # the one settings error (kept under its old name)


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


@dataclass(frozen=True, kw_only=True)
class IntakeSettings:
    max_image_bytes: int = 20 * MiB
    max_pixels: int = 50_000_000
    min_side: int = 16
    jpeg_draft: bool = False
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
    def from_settings(cls, s: Settings) -> "IntakeSettings":
        return cls(
            max_image_bytes=s.max_image_bytes,
            max_pixels=s.max_image_pixels,
            min_side=s.min_image_side,
            jpeg_draft=s.jpeg_draft,
            connect_timeout_s=s.fetch_connect_timeout,
            fetch_timeout_s=s.fetch_timeout,
            max_redirects=s.fetch_max_redirects,
            allowlist=tuple(AllowRule.parse(e) for e in s.url_allowlist),
            url_policy=s.url_policy,
        )

    @classmethod
    def from_env(cls) -> "IntakeSettings":
        return cls.from_settings(load_settings())
