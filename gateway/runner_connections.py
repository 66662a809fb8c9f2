"""Keep-alive of the gateway's connections to its runners, shorter than the runners' own.

BentoML 1.4.39's client behind `bentoml.depends()` (`_bentoml_impl/client/proxy2.py`,
`SessionManager._make_client`) opens its connections to a runner with aiohttp's default
keep-alive: an idle pooled connection is reused for 15 s. The runner's uvicorn closes an idle
connection after 5 s (`--timeout-keep-alive`, which BentoML sets for the entry service only).
A request sent on a pooled connection just as the runner closes it fails with a connection
error (ClientOSError, ServerDisconnectedError): the gateway answers 503 `model_unavailable`
for a runner that is up. The schema fuzzer met it after an idle spell; BentoML's own fix for
TCP (pull request 5698, issue 4971) is not released.

The patch builds the same sessions with a keep-alive of `KEEPALIVE_S`, below the runners' 5 s,
so the gateway always drops an idle connection before the runner does. It is installed with
the other guards (gateway/patches.py) in every worker, and refuses to install, failing the
start, when `_make_client` is no longer the code it was written against.
tests/gateway/test_runner_connections.py checks both.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
from typing import Any

KEEPALIVE_S = 2.0  # < uvicorn's default timeout_keep_alive (5 s) of BentoML's runner workers
# sha256 of SessionManager._make_client as written in bentoml 1.4.39
UPSTREAM_DIGEST = "78de1389c0ec381cdbb79be519f65a5aa69f0c9d0151013437a55c9294a56ca9"


class BentoMLClientChanged(RuntimeError):
    """BentoML's runner client is not the one this patch was written against."""


def source_digest(func: Any) -> str:
    return hashlib.sha256(textwrap.dedent(inspect.getsource(inspect.unwrap(func))).encode()).hexdigest()


def _short_keepalive(original):
    @functools.wraps(original)
    def _make_client(self):
        import aiohttp

        if self._app is not None or self._parsed_url.scheme not in ("file", "tcp"):
            return original(self)  # in-process (ASGI) or a plain URL: BentoML's own
        if self._parsed_url.scheme == "file":
            from _bentoml_impl.client.proxy2 import uri_to_path

            connector = aiohttp.UnixConnector(path=uri_to_path(self._parsed_url.geturl()), keepalive_timeout=KEEPALIVE_S)
            base_url = "http://127.0.0.1:3000"
        else:
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S)
            base_url = f"http://{self._parsed_url.netloc}"
        return aiohttp.ClientSession(base_url=base_url, headers=self._headers, timeout=self._timeout, connector=connector)

    _make_client.image_embed_keepalive_patch = True
    return _make_client


def install() -> None:
    """Patch SessionManager._make_client (idempotent); BentoMLClientChanged if it changed."""
    from _bentoml_impl.client.proxy2 import SessionManager

    current = SessionManager._make_client
    if getattr(current, "image_embed_keepalive_patch", False):
        return
    if source_digest(current) != UPSTREAM_DIGEST:
        raise BentoMLClientChanged(
            "BentoML's runner client (_bentoml_impl/client/proxy2.py SessionManager._make_client) is not the one "
            "gateway/runner_connections.py was written against (bentoml 1.4.39): read it again, port the patch and "
            "update UPSTREAM_DIGEST"
        )
    SessionManager._make_client = _short_keepalive(current)
