"""Support analysis ahead of the annotator: one background thread per app process that analyses the next records
of a queue while the current one is being read, so that the panel finds their support maps (and suggested
verdicts) already stored.

The thread shares the process's one loaded sentence model (loupe.support keeps one aligner per model path) and
commits each result through `review.analysis.ensure_support`, exactly as an on-demand analysis would, so a record
analysed ahead and one analysed when shown are stored the same way. Nothing here is needed for correctness: when
the worker is behind, stopped or crashed, the panel computes on demand (`ensure_support` again).

Scheduling: `ahead(ids)` puts `ids` (most urgent first) at the front of the pending list, before whatever earlier
calls left there, without duplicates; the list is capped at `MAX_PENDING`, the oldest requests dropped first.
Several browser sessions share the worker, so an earlier session's requests are deferred, not discarded.
Records already analysed are skipped (`ensure_support` returns at once for them).

Failures: a record that has disappeared (deleted, or never existed) is skipped. Any other exception stops the
thread: `status().error` says what happened (until a restarted thread completes a record), the record it failed
on is not tried again by the worker, and the next `ahead()` starts a new thread.

Usage:
```python
worker = AnalysisWorker(sessions, settings)
worker.ahead(["run/q2", "run/q3", "run/q4"])   # returns at once
worker.status()                                # WorkerStatus(running=True, pending=2, done=1, ...)
```
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

from configuration.settings import Settings
from review import analysis
from review.errors import NotFoundError
from review.records import get_record

MAX_PENDING = 500  # requests kept; past this the oldest are dropped (they are requested again when near)
IDLE_EXIT_S = 300.0  # a thread with nothing to do for this long ends; the next ahead() starts another


@dataclass(frozen=True)
class WorkerStatus:
    """What the worker is doing: whether its thread is alive, how many records wait, how many it analysed
    (`done`) or found analysed already (`skipped`) since the process started, the record in progress, and the
    last crash (`error`: None while none is outstanding)."""

    running: bool
    pending: int
    done: int
    skipped: int
    current: str | None
    error: str | None


class AnalysisWorker:
    """One daemon thread analysing queued records in the background; thread-safe, shared by all sessions."""

    def __init__(self, sessions, settings: Settings) -> None:
        """
        :param sessions: the review database's session factory.
        :param settings: the settings in force (the embedding model, the suggester).
        """
        self.sessions, self.settings = sessions, settings
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[str] = []
        self._failed: set[str] = set()  # records the worker crashed on: left to on-demand analysis
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._done = self._skipped = 0
        self._current: str | None = None
        self._error: str | None = None

    def ahead(self, record_ids: Iterable[str]) -> None:
        """Analyse these records soon, the first first, before anything requested earlier; returns at once.
        Starts the thread if it is not running (first call, after a crash, after it idled out)."""
        with self._lock:
            if self._stopping:
                return
            wanted = [record_id for record_id in dict.fromkeys(record_ids) if record_id and record_id not in self._failed]
            chosen = set(wanted)
            self._pending = (wanted + [record_id for record_id in self._pending if record_id not in chosen])
            del self._pending[MAX_PENDING:]
            if self._pending and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._work, name="loupe-analysis-ahead", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def status(self) -> WorkerStatus:
        with self._lock:
            return WorkerStatus(running=self._thread is not None and self._thread.is_alive(),
                                pending=len(self._pending), done=self._done, skipped=self._skipped,
                                current=self._current, error=self._error)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending or in progress (or the thread has stopped); False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: not (self._pending or self._current)
                                       or self._thread is None or not self._thread.is_alive(), timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Let the thread finish the record in progress and end (for tests and shutdown); ahead() then does
        nothing."""
        with self._lock:
            self._stopping = True
            self._pending.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _next(self) -> str | None:
        with self._wake:
            self._current = None
            self._wake.notify_all()  # wait_idle
            if not self._wake.wait_for(lambda: self._pending or self._stopping, timeout=IDLE_EXIT_S):
                return None
            if self._stopping:
                return None
            self._current = self._pending.pop(0)
            return self._current

    def _work(self) -> None:
        record_id = None
        try:
            while (record_id := self._next()) is not None:
                self._analyse(record_id)
        except Exception as error:  # noqa: BLE001  the thread reports, the page computes on demand
            summary = "".join(traceback.format_exception_only(error)).strip()
            with self._wake:
                if record_id is not None:
                    self._failed.add(record_id)
                self._error = f"background analysis stopped on record {record_id}: {summary}"
                self._current = None
                self._wake.notify_all()
        finally:
            with self._wake:
                self._current = None
                self._wake.notify_all()

    def _analyse(self, record_id: str) -> None:
        try:
            with self.sessions() as session:
                record = get_record(session, record_id=record_id)
            stored = analysis.ensure_support(self.sessions, self.settings, record)
        except NotFoundError:  # deleted since it was queued
            return
        with self._lock:
            if stored is record:  # nothing was missing: ensure_support returns the record it was given
                self._skipped += 1
            else:
                self._done += 1
            self._error = None  # a record went through: an earlier crash is behind us
