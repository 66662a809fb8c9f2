"""IMAGE_EMBED_URL_ALLOWLIST's entries: a host name or an IP network, optionally pinned to a
port. The settings check each entry when they are read (config/sections.py); the intake
admits a URL by them (intake/fetch.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .fields import SettingsError


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
            raise SettingsError(f"IMAGE_EMBED_URL_ALLOWLIST entry {entry!r} is not a host, IP or network")
        return cls(host=text.lower().rstrip("."), port=port)


def _parse_port(raw: str, entry: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"IMAGE_EMBED_URL_ALLOWLIST entry {entry!r} has an invalid port")
    return int(raw)
