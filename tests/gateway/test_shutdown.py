"""The gateway's shutdown pieces: sockets pinned against BentoML's early clean-up, and new
connections refused at once although another process (BentoML's arbiter) holds the socket."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.utils.uri import path_to_uri, uri_to_path

from gateway.shutdown import GracefulShutdown, pin_runner_sockets, stop_listening


@pytest.fixture()
def runner_map():
    before = BentoMLContainer.remote_runner_mapping.get()
    yield
    BentoMLContainer.remote_runner_mapping.set(before)


def test_pinned_sockets_survive_the_removal_of_bentomls_directory(runner_map):
    uds = tempfile.mkdtemp(prefix="bentoml-uds-")
    path = os.path.join(uds, "1234.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(4)
    BentoMLContainer.remote_runner_mapping.set({"clip_runner": path_to_uri(path), "remote": "tcp://10.0.0.1:3000"})
    own = pin_runner_sockets()
    try:
        mapping = BentoMLContainer.remote_runner_mapping.get()
        assert mapping["remote"] == "tcp://10.0.0.1:3000"
        pinned = uri_to_path(mapping["clip_runner"])
        assert Path(pinned).parent == Path(own) and pinned != path
        shutil.rmtree(uds)  # what `bentoml serve` does first on SIGTERM
        client = socket.socket(socket.AF_UNIX)
        client.connect(pinned)  # the runner is still reachable
        conn, _ = listener.accept()
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.close()
        client.close()
    finally:
        listener.close()
        shutil.rmtree(uds, ignore_errors=True)
        shutil.rmtree(own, ignore_errors=True)


def test_nothing_to_pin_without_unix_sockets(runner_map):
    BentoMLContainer.remote_runner_mapping.set({})
    assert pin_runner_sockets() is None
    BentoMLContainer.remote_runner_mapping.set({"clip_runner": "tcp://127.0.0.1:1"})
    assert pin_runner_sockets() is None


def test_the_links_are_removed_when_the_gateway_stops(runner_map):
    gateway = GracefulShutdown()
    gateway.runner_links = tempfile.mkdtemp()
    gateway.remove_runner_links()
    assert not os.path.exists(gateway.runner_links)


def test_stop_listening_refuses_new_connections_though_another_process_holds_the_socket():
    async def scenario() -> tuple[bytes, str]:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        arbiters_copy = socket.socket(fileno=os.dup(listener.fileno()))  # as BentoML's arbiter keeps it

        async def echo(reader, writer):
            writer.write(await reader.read(4))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, sock=listener)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert stop_listening(SimpleNamespace(servers=[server])) == 1
        writer.write(b"ping")  # a connection made before: still answered
        answer = await reader.read(4)
        writer.close()
        try:
            await asyncio.open_connection("127.0.0.1", port)
            outcome = "connected"
        except ConnectionRefusedError:
            outcome = "refused"
        arbiters_copy.close()
        return answer, outcome

    answer, outcome = asyncio.run(scenario())
    assert answer == b"ping"
    assert outcome == "refused"
