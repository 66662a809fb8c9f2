"""A circuit breaker in front of the PostgreSQL pool: while the database is unreachable,
every call fails at once (503 `search_backend_unavailable`, with the cause) instead of
waiting out the connect timeout, and a background probe notices when it is back.

    closed    calls go to the pool. A connection failure (the connection refused, lost or
              timed out; the server shutting down or starting up) opens the breaker. A call
              that waited out the pool's timeout only asks for a probe: a busy pool is not a
              database that is down.
    open      calls fail at once with the failure's detail. One thread probes with a fresh
              connection, the first time at once, then every `probe_interval` seconds; the
              first success runs `on_recover` (the pool drops its broken connections) and
              closes the breaker.

Nothing is queued or retried here: a call that fails was not done, so no acknowledged write
can be lost; the client retries after Retry-After. One breaker per process and database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import BackendUnavailable

logger = logging.getLogger("image_embed.search.pg_breaker")

PROBE_INTERVAL_S = 1.0  # also the Retry-After the gateway sends with a 503
# SQLSTATEs of a server that cannot serve any connection: class 08 (connection exceptions),
# admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down).
DOWN_STATES = ("57P01", "57P02", "57P03")


def is_connection_failure(exc: BaseException) -> bool:
    """True for a failure of the connection itself, not of one statement (a deadlock, a lock
    or statement timeout, a full disk leave the breaker closed)."""
    import psycopg

    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in DOWN_STATES


class CircuitBreaker:
    def __init__(
        self,
        probe: Callable[[], None],
        where: str,
        *,
        on_recover: Callable[[], None] | None = None,
        probe_interval: float = PROBE_INTERVAL_S,
    ) -> None:
        self._probe = probe
        self._on_recover = on_recover
        self.where = where
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._open = False
        self._detail = ""
        self._opened_at = 0.0
        self._prober: threading.Thread | None = None
        self._stop = threading.Event()
        self.opened_count = 0  # times it opened (tests, /health)

    @property
    def is_open(self) -> bool:
        return self._open

    def check(self) -> None:
        """Raise BackendUnavailable at once while the breaker is open."""
        if self._open:
            raise BackendUnavailable(
                f"PostgreSQL at {self.where} is unreachable (for {time.monotonic() - self._opened_at:.0f} s; "
                f"retrying in the background, calls fail at once until it answers): {self._detail}"
            )

    def failed(self, exc: BaseException, detail: str) -> None:
        """A call failed with `exc`: open on a connection failure, probe on a pool timeout."""
        from psycopg_pool import PoolTimeout

        if is_connection_failure(exc):
            self.trip(detail)
        elif isinstance(exc, PoolTimeout):
            self._start_probing(trip_on_failure=True)

    def trip(self, detail: str) -> None:
        self._open_with(detail)
        self._start_probing(trip_on_failure=False)

    def _open_with(self, detail: str) -> None:
        with self._lock:
            self._detail = detail
            if not self._open:
                self._open, self._opened_at = True, time.monotonic()
                self.opened_count += 1
                logger.warning("PostgreSQL at %s is unreachable; search calls fail at once until it answers: %s", self.where, detail)

    def _start_probing(self, trip_on_failure: bool) -> None:
        with self._lock:
            if self._stop.is_set() or (self._prober is not None and self._prober.is_alive()):
                return
            self._prober = threading.Thread(target=self._probe_loop, args=(trip_on_failure,), name="pg-breaker-probe", daemon=True)
            self._prober.start()

    def _probe_loop(self, trip_on_failure: bool) -> None:
        while not self._stop.is_set():
            try:
                self._probe()
            except Exception as exc:
                detail = str(exc).strip()[:300] or type(exc).__name__
                if trip_on_failure or self._open:
                    self._open_with(detail)
                    trip_on_failure = True
                if self._stop.wait(self.probe_interval):
                    return
                continue
            if self._open:
                self._recover()
            return

    def _recover(self) -> None:
        if self._on_recover is not None:
            try:
                self._on_recover()
            except Exception:  # the pool fixes itself on use too; never keep the breaker open for it
                logger.exception("after PostgreSQL came back, checking the pool failed")
        with self._lock:
            down_for = time.monotonic() - self._opened_at
            self._open = False
        logger.warning("PostgreSQL at %s answers again (after %.1f s); search calls resume", self.where, down_for)

    def close(self) -> None:
        """Stop probing (the process is shutting down)."""
        self._stop.set()
