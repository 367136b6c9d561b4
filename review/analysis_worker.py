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
Records already analysed are skipped (`ensure_support` returns at once for them). The thread takes up to `BATCH`
records at a time and embeds their sentences together first (`loupe.support.prepare_support`, about twice as
fast as one record at a time), then analyses and commits them one by one; a newer `ahead()` interrupts the batch
after the record in progress, the rest of it waiting right behind the new request.

Yielding to the page: the worker starts a batch, and goes on to its next record, only `quiet_s` (QUIET_S) after
the latest `ahead()`. A page calls `ahead()` while it draws a record, so the drawing (the script run, then the
browser's rendering, on the same few cores) does not compete with MiniLM; an annotator reading the record
leaves the worker ample time.

Time limit: one record's analysis may take `settings.analysis_time_limit_s` (LOUPE_ANALYSIS_TIME_LIMIT_S) at
most; past it the analysis stops (components.support_aligner.TimeLimitExceeded), nothing is stored, the worker goes
on with the next record and `over_limit(id)` says how long it tried: the page says so and analyses it on demand.

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
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from components.support_aligner import TimeLimitExceeded
from configuration.settings import Settings
from loupe import support
from review import analysis
from review.errors import NotFoundError
from review.models import Record
from review.records import get_record

MAX_PENDING = 500  # requests kept; past this the oldest are dropped (they are requested again when near)
IDLE_EXIT_S = 300.0  # a thread with nothing to do for this long ends; the next ahead() starts another
BATCH = 8  # records taken at a time: their sentences are embedded together (loupe.support.prepare_support)
QUIET_S = 0.4  # after an ahead() call the worker waits this long: the page that called is drawn first


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

    def __init__(self, sessions, settings: Settings, quiet_s: float = QUIET_S) -> None:
        """
        :param sessions: the review database's session factory.
        :param settings: the settings in force (the embedding model, the suggester).
        :param quiet_s: how long after an ahead() call the worker waits before it analyses anything.
        """
        self.sessions, self.settings, self.quiet_s = sessions, settings, quiet_s
        self._last_request = float("-inf")  # time.monotonic() of the latest ahead()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[str] = []
        self._failed: set[str] = set()  # records the worker crashed on: left to on-demand analysis
        self._over_limit: dict[str, float] = {}  # records past the time limit -> the limit: left to on demand
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._done = self._skipped = 0
        self._requests = 0  # ahead() calls so far: a batch in progress yields to a newer one
        self._latest: set[str] = set()  # the records of the latest call
        self._current: str | None = None
        self._error: str | None = None

    def ahead(self, record_ids: Iterable[str]) -> None:
        """Analyse these records soon, the first first, before anything requested earlier; returns at once.
        Starts the thread if it is not running (first call, after a crash, after it idled out)."""
        with self._lock:
            if self._stopping:
                return
            wanted = [record_id for record_id in dict.fromkeys(record_ids)
                      if record_id and record_id not in self._failed and record_id not in self._over_limit]
            self._requests += 1
            self._last_request = time.monotonic()
            self._latest = chosen = set(wanted)
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

    def over_limit(self, record_id: str) -> float | None:
        """The time limit (seconds) the record's analysis ran past in this worker, or None if it did not."""
        with self._lock:
            return self._over_limit.get(record_id)

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

    def _next_batch(self) -> tuple[list[str], int]:
        """Up to BATCH pending records, most urgent first ([] when stopping or idle too long), and the number of
        requests so far."""
        with self._wake:
            self._current = None
            self._wake.notify_all()  # wait_idle
            if not self._wake.wait_for(lambda: self._pending or self._stopping, timeout=IDLE_EXIT_S):
                return [], self._requests
            self._wait_quiet()
            if self._stopping or not self._pending:
                return [], self._requests
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            self._current = batch[0]
            return batch, self._requests

    def _wait_quiet(self) -> None:
        """With the lock held: wait until `quiet_s` have passed since the latest ahead() (or stop() was called)."""
        while not self._stopping:
            left = self._last_request + self.quiet_s - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)

    def _work(self) -> None:
        record_id, rest = None, []
        try:
            while True:
                batch, taken = self._next_batch()
                if not batch:
                    return
                record_id, rest = batch[0], batch[1:]
                self._prepare(batch)
                self._analyse(record_id)
                while rest:
                    with self._lock:
                        self._wait_quiet()
                        if self._stopping:
                            return
                        if self._requests != taken:  # a newer request goes first; the rest wait right behind it
                            newest = [other for other in self._pending if other in self._latest]
                            older = [other for other in self._pending if other not in self._latest and other not in rest]
                            self._pending = newest + [other for other in rest if other not in newest] + older
                            rest = []
                            break
                        record_id, rest = rest[0], rest[1:]
                        self._current = record_id
                    self._analyse(record_id)
                record_id = None
        except Exception as error:  # noqa: BLE001  the thread reports, the page computes on demand
            summary = "".join(traceback.format_exception_only(error)).strip()
            with self._wake:
                if record_id is not None:
                    self._failed.add(record_id)
                self._pending = rest + [other for other in self._pending if other not in rest]
                self._error = f"background analysis stopped on record {record_id}: {summary}"
        finally:
            with self._wake:
                self._current = None
                self._wake.notify_all()

    def _prepare(self, batch: list[str]) -> None:
        """Embed the sentences of the batch's records that lack a support map in one go (an optimisation only:
        each is then analysed and stored one by one by ensure_support)."""
        with self.sessions() as session:
            rows = session.execute(select(Record.answer, Record.passages).where(
                Record.id.in_(batch), Record.support.is_(None))).all()
        items = [(answer or "", [(passage or {}).get("text") or "" for passage in passages or []])
                 for answer, passages in rows]
        if len(items) > 1:
            try:
                support.prepare_support(self.settings, items, deadline=self._deadline())
            except TimeLimitExceeded:  # each record is then embedded by its own analysis, under its own limit
                pass

    def _deadline(self) -> float:
        return time.monotonic() + self.settings.analysis_time_limit_s

    def _analyse(self, record_id: str) -> None:
        try:
            with self.sessions() as session:
                record = get_record(session, record_id=record_id)
            stored = analysis.ensure_support(self.sessions, self.settings, record, deadline=self._deadline())
        except NotFoundError:  # deleted since it was queued
            return
        except TimeLimitExceeded:  # left to on-demand analysis; the next records go on
            with self._lock:
                self._over_limit[record_id] = self.settings.analysis_time_limit_s
            return
        with self._lock:
            if stored is record:  # nothing was missing: ensure_support returns the record it was given
                self._skipped += 1
            else:
                self._done += 1
            self._error = None  # a record went through: an earlier crash is behind us

