"""PostgreSQL that cannot serve: a database that is down, one that accepts and never answers,
a role that may not create pgvector, a malformed URL. Each fails the call with a 503 that
names the cause and the fix (or the start, for a malformed URL), within the timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from config.settings import SettingsError, load_settings
from search.backend import open_indexes
from search.errors import BackendUnavailable
from search.pg_indexes import PgIndexRegistry
from search.pg_store import PgSettings
from tests.postgres import admin, fresh_database, url_for
from tests.search.helpers import BINDING


def registry(url: str) -> PgIndexRegistry:
    return PgIndexRegistry(PgSettings(url=url, connect_timeout=1))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def test_a_database_that_is_down_answers_503_at_once():
    cat = registry(f"postgresql://nobody:secret@127.0.0.1:{closed_port()}/images")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as err:
        cat.get("ix", BINDING, create=True)
    assert time.monotonic() - started < 5
    assert err.value.status == 503 and "unreachable" in err.value.detail and "IMAGE_EMBED_SEARCH_URL" in err.value.detail
    assert "secret" not in err.value.detail
    report = cat.open_all()  # at start-up: logged and reported, the runner still starts
    assert list(report) == ["(database)"] and report["(database)"].startswith("search_backend_unavailable")


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never speaks
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        cat = registry(f"postgresql://u@127.0.0.1:{listener.getsockname()[1]}/db")
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            cat.names()
        assert time.monotonic() - started < 10  # the connect timeout, not a hang
    finally:
        listener.close()


def test_a_role_that_may_not_create_pgvector_is_told_the_fix():
    url = fresh_database()
    database = url.split("/")[3].split("?")[0]
    admin("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'plain') THEN CREATE ROLE plain LOGIN; END IF; END $$")
    admin(f"GRANT ALL ON DATABASE {database} TO plain")
    admin("GRANT ALL ON SCHEMA public TO plain", database)
    with pytest.raises(BackendUnavailable) as err:
        registry(url_for(database, user="plain")).get("ix", BINDING, create=True)
    assert "CREATE EXTENSION vector" in err.value.detail and "superuser" in err.value.detail
    admin("CREATE EXTENSION vector", database)  # the fix: then the same role works
    ix = registry(url_for(database, user="plain")).get("ix", BINDING, create=True)
    assert ix.count == 0


def test_the_database_coming_back_is_used_without_a_restart():
    url = fresh_database()
    cat = registry(url)
    ix = cat.get("ix", BINDING, create=True)
    database = url.split("/")[3].split("?")[0]
    admin(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")
    admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()")
    with pytest.raises(BackendUnavailable):
        _ = cat.get("ix").count
    admin(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")
    deadline = time.monotonic() + 10
    while True:  # the pool reconnects in the background
        try:
            assert cat.get("ix").count == ix.count == 0
            break
        except BackendUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    cat.close()


@pytest.mark.parametrize("url", ["mysql://x@h/db", "postgresql://h/db?bogus=1", "postgresql://[bad"])
def test_a_malformed_url_fails_the_start(monkeypatch, url):
    monkeypatch.setenv("IMAGE_EMBED_SEARCH_URL", url)
    with pytest.raises(SettingsError, match="IMAGE_EMBED_SEARCH_URL"):
        open_indexes(load_settings())
