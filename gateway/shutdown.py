"""Graceful shutdown at the gateway: answer what is in flight, refuse what is new.

On SIGTERM BentoML's arbiter signals every worker and drains them; two things of its own
would still break the requests in flight or leave new clients hanging (both checked by
tests/integration/test_graceful_shutdown.py):

1. Its first act is to delete the directory of the runners' unix socket files, so a gateway
   request that needs a new connection to a runner after the signal fails (503), although
   the runners themselves still listen (they outlive the gateway: runners/shutdown.py). The
   gateway therefore connects through hard links of those socket files in a directory of its
   own (`pin_runner_sockets`), removed when the gateway stops.
2. It owns the listening socket and keeps it open until every worker has exited, so a new
   client would connect, wait the whole drain, and then be reset. The gateway worker, on
   SIGTERM, stops serving its listeners and shuts the listening socket down (on Linux
   shutdown(SHUT_RD) ends the listening state for every process sharing it): new connections
   are refused at once. Not under `bentoml serve --reload`, which restarts the workers on the
   same socket.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import socket
import tempfile
from types import FrameType
from typing import Any

import bentoml

from runners.shutdown import Handler, chain_sigterm

logger = logging.getLogger("image_embed.gateway")


def pin_runner_sockets() -> str | None:
    """Point the runner map at hard links of the runners' unix sockets in a directory of our own.

    Call before the first use of a `bentoml.depends` attribute (which reads the map once).
    Returns the directory, or None when there is nothing to pin (no unix sockets: runners
    in-process, or reached over TCP). A socket that cannot be linked keeps its own path.
    """
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.utils.uri import path_to_uri, uri_to_path

    mapping = dict(BentoMLContainer.remote_runner_mapping.get() or {})
    sockets = {name: uri_to_path(uri) for name, uri in mapping.items() if uri.startswith("file://")}
    if not sockets:
        return None
    # Next to BentoML's own directory: the same file system, so hard links work.
    parent = os.path.dirname(os.path.dirname(next(iter(sockets.values()))))
    own = tempfile.mkdtemp(prefix="image-embed-runners-", dir=parent)
    for name, path in sockets.items():
        link = os.path.join(own, os.path.basename(path))
        try:
            os.link(path, link)
        except OSError as exc:
            logger.warning("runner %s: cannot link its socket %s (%s); a shutdown may cut its requests", name, path, exc)
            continue
        mapping[name] = path_to_uri(link)
    BentoMLContainer.remote_runner_mapping.set(mapping)
    return own


def reloading() -> bool:
    """True when this worker's arbiter (`bentoml serve`) runs with --reload."""
    import psutil

    try:
        return "--reload" in psutil.Process(os.getppid()).cmdline()
    except psutil.Error:
        return True  # unknown: keep the socket (the safe side)


def stop_listening(uvicorn_server: Any) -> int:
    """Close the uvicorn server's listeners and end the listening state of their sockets.

    Returns how many sockets were shut down. Runs in the event loop.
    """
    count = 0
    for server in list(getattr(uvicorn_server, "servers", None) or []):
        dups = [os.dup(s.fileno()) for s in server.sockets]
        server.close()  # no more accepting here (uvicorn's own shutdown does it again, harmlessly)
        for fd in dups:
            sock = socket.socket(fileno=fd)
            try:
                if sock.type == socket.SOCK_STREAM:
                    sock.shutdown(socket.SHUT_RD)
                    count += 1
            except OSError as exc:
                logger.warning("could not stop listening on %s: %s", sock, exc)
            finally:
                sock.close()
    return count


def _refuse_then_drain(
    loop: asyncio.AbstractEventLoop, previous: Handler, sig: int, frame: FrameType | None
) -> None:
    previous(sig, frame)  # uvicorn: graceful shutdown of the requests in flight
    uvicorn_server = getattr(previous, "__self__", None)
    if uvicorn_server is not None:
        loop.call_soon_threadsafe(stop_listening, uvicorn_server)


class GracefulShutdown:
    """Gateway mixin (module docstring); `__init__` calls `pin_runner_sockets` first."""

    runner_links: str | None = None

    def pin_runner_sockets(self) -> None:
        self.runner_links = pin_runner_sockets()

    @bentoml.on_startup
    async def refuse_new_connections_on_shutdown(self) -> None:
        if not reloading():
            chain_sigterm(functools.partial(_refuse_then_drain, asyncio.get_running_loop()))

    @bentoml.on_shutdown
    def remove_runner_links(self) -> None:
        if self.runner_links:
            shutil.rmtree(self.runner_links, ignore_errors=True)
