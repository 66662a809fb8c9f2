"""Optional API-key authentication for every route but liveness and readiness.

    IMAGE_EMBED_API_KEYS       comma-separated keys (several allow rotation without downtime)
    IMAGE_EMBED_API_KEYS_FILE  a file with one key per line (for mounted secrets)

Unset (the default): no authentication, for local use. Set: each request must carry one of
the keys as `Authorization: Bearer <key>` (what `bentoml.SyncHTTPClient(url, token=key)`
sends) or `X-API-Key: <key>`; otherwise 401. /livez, /readyz and /healthz stay open so an
orchestrator can probe without the secret, and so do the web UI's pages and scripts under
/ui (gateway/ui/: they carry no data, and ask for the key to call the APIs). Keys are compared in constant time and are
never logged.
"""

from __future__ import annotations

import hmac
import json

from config.settings import Settings, SettingsError, load_settings

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
UI_PREFIX = "/ui"  # gateway/ui/: the static pages of the web UI


def is_open(path: str) -> bool:
    if path in OPEN_PATHS:
        return True
    # Only the UI's own files: a path that climbs out of /ui (routed literally, never resolved)
    # still needs a key.
    return (path == UI_PREFIX or path.startswith(UI_PREFIX + "/")) and ".." not in path and "//" not in path
MIN_KEY_LENGTH = 16


class AuthSettingsError(SettingsError):
    pass


def load_api_keys(settings: Settings | None = None) -> tuple[str, ...]:
    s = settings or load_settings()
    keys = list(s.api_keys)
    if s.api_keys_file is not None:
        try:
            keys += [line.strip() for line in s.api_keys_file.read_text().splitlines()]
        except OSError as exc:
            raise AuthSettingsError(f"IMAGE_EMBED_API_KEYS_FILE={str(s.api_keys_file)!r} cannot be read: {exc}") from None
    keys = [k for k in keys if k and not k.startswith("#")]
    short = [k for k in keys if len(k) < MIN_KEY_LENGTH]
    if short:
        raise AuthSettingsError(f"API keys must be at least {MIN_KEY_LENGTH} characters ({len(short)} too short)")
    return tuple(keys)


def presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


class APIKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self.keys = tuple(k.encode() for k in keys)

    def _accepts(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = key.encode("utf-8", "replace")
        # Check every key (no early exit), so timing says nothing about which one matched.
        return any([hmac.compare_digest(candidate, k) for k in self.keys])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._accepts(presented_key(scope)):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "unauthorized",
                "detail": "this server requires an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="image-embed"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
