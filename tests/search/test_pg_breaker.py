"""The circuit breaker in front of PostgreSQL (search/pg_breaker.py): which failures open it,
that an open breaker answers at once, that a background probe closes it; and, on a real
PostgreSQL stopped under 32 concurrent callers, that every call answers within the connect
timeout, most at once, and that the same registry recovers with no acknowledged write lost."""

from __future__ import annotations

import threading
import time

import numpy as np
import psycopg
import pytest
from psycopg_pool import PoolTimeout

from search.errors import BackendUnavailable, SearchError
from search.pg_breaker import CircuitBreaker, is_connection_failure
from search.pg_indexes import PgIndexRegistry
from search.pg_store import PgSettings
from tests.postgres import StoppableServer
from tests.search.helpers import BINDING

CONNECT_TIMEOUT_S = 2  # libpq's smallest


@pytest.mark.parametrize(
    ("exc", "down"),
    [
        (psycopg.OperationalError("connection failed: No such file or directory"), True),  # no SQLSTATE: the client's side
        (psycopg.errors.AdminShutdown(), True),
        (psycopg.errors.CannotConnectNow(), True),
        (psycopg.errors.ConnectionFailure(), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (psycopg.errors.DeadlockDetected(), False),
        (psycopg.errors.QueryCanceled(), False),
        (psycopg.errors.LockNotAvailable(), False),
        (psycopg.errors.DiskFull(), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_connection_failures_count_as_down(exc, down):
    assert is_connection_failure(exc) is down


class Probe:
    """A probe that fails until `up` is set; counts its calls."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if not self.up.is_set():
            raise ConnectionRefusedError("connection refused")


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_open_answers_at_once_until_a_probe_succeeds():
    probe, recovered = Probe(), []
    breaker = CircuitBreaker(probe, "postgresql://u@db/x", on_recover=lambda: recovered.append(1), probe_interval=0.05)
    breaker.check()  # closed: passes
    breaker.failed(psycopg.errors.AdminShutdown(), "terminating connection due to administrator command")
    assert breaker.is_open and breaker.opened_count == 1
    with pytest.raises(BackendUnavailable) as err:  # the reason: the call's, or the first probe's by now
        breaker.check()
    assert err.value.status == 503 and "postgresql://u@db/x" in err.value.detail
    assert "administrator command" in err.value.detail or "connection refused" in err.value.detail
    started = time.monotonic()
    for _ in range(100):
        with pytest.raises(BackendUnavailable) as err:
            breaker.check()
    assert time.monotonic() - started < 1.0  # no connect attempt (that takes the connect timeout, 2 s at least)
    wait_for(lambda: probe.calls >= 3)  # probing in the background, still open
    assert breaker.is_open and not recovered
    with pytest.raises(BackendUnavailable) as err:
        breaker.check()
    assert err.value.status == 503 and "connection refused" in err.value.detail  # the probe's reason now
    probe.up.set()
    wait_for(lambda: not breaker.is_open)
    assert recovered == [1]
    breaker.check()
    breaker.close()


def test_a_failed_statement_leaves_it_closed():
    probe = Probe()
    breaker = CircuitBreaker(probe, "db", probe_interval=0.05)
    breaker.failed(psycopg.errors.DeadlockDetected(), "deadlock detected")
    breaker.failed(psycopg.errors.QueryCanceled(), "canceling statement due to statement timeout")
    assert not breaker.is_open and probe.calls == 0


def test_a_pool_timeout_opens_it_only_if_the_probe_fails():
    probe = Probe()
    probe.up.set()  # a busy pool, the database is fine
    breaker = CircuitBreaker(probe, "db", probe_interval=0.05)
    breaker.failed(PoolTimeout("couldn't get a connection after 2.00 sec"), "pool timeout")
    wait_for(lambda: probe.calls == 1)
    time.sleep(0.1)
    assert not breaker.is_open and probe.calls == 1
    probe.up.clear()  # now the database is down
    breaker.failed(PoolTimeout("couldn't get a connection after 2.00 sec"), "pool timeout")
    wait_for(lambda: breaker.is_open)
    probe.up.set()
    wait_for(lambda: not breaker.is_open)
    breaker.close()


def test_a_stopped_database_answers_every_caller_at_once_and_recovers():
    """32 threads upsert and read through one registry; PostgreSQL stops for 4 s."""
    with StoppableServer() as pg:
        registry = PgIndexRegistry(PgSettings(url=pg.fresh_database(), connect_timeout=CONNECT_TIMEOUT_S))
        registry.get("ix", BINDING, create=True)
        acked: list[str] = []
        calls: list[tuple[float, float, bool]] = []  # (start, seconds, ok)
        stop = threading.Event()

        def client(n: int) -> None:
            rng = np.random.default_rng(n)
            i = 0
            while not stop.is_set():
                key = f"c{n}-{i}"
                start = time.monotonic()
                try:
                    index = registry.get("ix")
                    index.upsert([key], rng.standard_normal((1, BINDING.dim)))
                    acked.append(key)
                    index.search(rng.standard_normal((1, BINDING.dim)), 5)
                    ok = True
                except SearchError as exc:
                    assert exc.status == 503, exc.detail
                    ok = False
                calls.append((start, time.monotonic() - start, ok))
                i += 1
                time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        down = time.monotonic()
        pg.stop()
        time.sleep(4.0)
        pg.start()
        up = time.monotonic()
        wait_for(lambda: any(ok and start > up for start, _, ok in calls), timeout=10)  # recovered, same registry
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)

        during = [(s, took) for s, took, ok in calls if down + 0.2 < s < up]
        assert max(took for _, took, _ in calls) < CONNECT_TIMEOUT_S + 1  # nobody waits more than the timeout
        slow = [took for _, took in during if took > 0.5]
        assert len(slow) <= 32, f"{len(slow)} of {len(during)} calls in the outage took > 0.5 s (each caller should pay at most once)"
        assert len(during) > 100, len(during)  # the outage was exercised
        assert registry.db.breaker.opened_count >= 1 and not registry.db.breaker.is_open
        found = registry.get("ix").store.get(acked)
        assert all(item is not None for item in found), "an acknowledged write was lost"
        registry.close()
