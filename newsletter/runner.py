"""The scheduler of `newsletter run`: APScheduler 3, its SQLAlchemy job store in the site's database.

The occurrences table is the truth; the job store mirrors its `scheduled` rows as one-off date jobs
(`occurrence-<id>`, replace_existing). Misfires are never dropped by APScheduler (no grace limit):
`jobs.fire` decides with the occurrence's own `late_by` and event start. One scheduler per database:
`SchedulerLock` (PostgreSQL advisory lock, SQLite lock file); a second runner waits as standby.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from newsletter import jobs
from newsletter.campaigns import Schedules
from newsletter.schedule.load import LiveSchedules
from newsletter.schedule.occurrences import fire_at, interrupted, scheduled
from newsletter.schedule.sync import reconcile
from newsletter.store import Store, now_utc

log = logging.getLogger("newsletter.schedule")
JOB_PREFIX = "occurrence-"
LOCK_SPACE = 727274005  # advisory-lock namespace of the scheduler
SETTLE = timedelta(seconds=2)  # jobs due sooner than this belong to APScheduler's loop


class SchedulerLock:
    """Held by the one scheduler of a database for as long as it runs."""

    def __init__(self, store: Store):
        self.store = store
        self._conn: Any = None
        self._fd: int | None = None
        self._key = 0

    def try_acquire(self) -> bool:
        if self.store.is_sqlite:
            path = f"{make_url(self.store.url).database}.scheduler.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        conn = self.store.engine.connect()
        # Per database and schema as the server names them (not as URLs spell them), so unrelated
        # stores never block each other and two spellings of one store never both run.
        where = conn.exec_driver_sql("SELECT current_database() || '.' || current_schema()").scalar()
        self._key = zlib.crc32(str(where).encode()) & 0x7FFFFFFF
        got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_SPACE}, {self._key})").scalar()
        conn.commit()
        if got:
            self._conn = conn  # the session holds the lock: keep it open
            return True
        conn.close()
        return False

    def acquire(
        self, stop: threading.Event, poll: float = 1.0, on_wait: Callable[[], None] | None = None
    ) -> bool:
        """Wait (as standby) until the lock is ours or `stop` is set; True when held."""
        waited = False
        while not stop.is_set():
            if self.try_acquire():
                return True
            if not waited and on_wait:
                on_wait()
            waited = True
            stop.wait(poll)
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_SPACE}, {self._key})")
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None


class Runner:
    """The scheduler of one site: lock, reconcile, jobs, and a watch on schedules.yaml."""

    def __init__(
        self,
        site: Any,
        *,
        clock: Callable[[], datetime] = now_utc,
        enqueue: jobs.Enqueue | None = None,
        watch_seconds: float = 2.0,
        reconcile_minutes: float = 60.0,
        feed_pull_minutes: float | None = None,
    ):
        self.site = site
        self.clock = clock
        self.enqueue = enqueue
        self.watch_seconds = watch_seconds
        self.reconcile_minutes = reconcile_minutes
        self.feed_pull_minutes = feed_pull_minutes
        self.lock = SchedulerLock(site.store)
        self.scheduler: BackgroundScheduler | None = None
        self.live: LiveSchedules | None = None
        # Held by whatever touches the job store from a job (watch, reconcile); stop() takes it after
        # setting _stopping, because APScheduler's shutdown holds its own locks while it waits for
        # running jobs, and a job calling into the scheduler then would wait forever.
        self._sync_lock = threading.RLock()
        self._stopping = threading.Event()
        self._jobs_engine: Any = None

    @property
    def schedules(self) -> Schedules:
        """The schedule in force: the last valid one."""
        assert self.live is not None, "the runner is not started"
        return self.live.current

    @property
    def last_error(self) -> str:
        """The latest invalid edit of the schedule, while the previous one keeps running."""
        return self.live.last_error if self.live is not None else ""

    def start(
        self,
        stop: threading.Event | None = None,
        on_wait: Callable[[], None] | None = None,
        *,
        paused: bool = False,
    ) -> bool:
        """Validate, take the lock (waiting as standby), reconcile, start firing. False if stopped first.

        Raises ScheduleError on an invalid schedules.yaml: `run` refuses to start on one. With
        `paused`, jobs are stored but fire only through `run_due` (tests drive time with the clock).
        """
        LiveSchedules(self.site)  # validate before waiting as standby
        if not self.lock.acquire(stop or threading.Event(), on_wait=on_wait):
            return False
        try:
            # Loaded again: the files may have changed while we waited as standby.
            self.live = LiveSchedules(self.site)
            jobs.bind(jobs.Binding(self.site, self.live, self.clock, self.enqueue))
            changes = reconcile(self.site, self.clock(), self.schedules)
            log.info("reconciled on start: %s", changes.summary())
            for ident in interrupted(self.site.store):
                jobs.finish_enqueue(ident)
            self.scheduler = self._scheduler()
            # Paused until the job store mirrors the occurrences, so nothing fires half-synced.
            self.scheduler.start(paused=True)
            self.sync_jobs()
            if not paused:
                self.scheduler.resume()
        except BaseException:
            self.lock.release()
            raise
        return True

    def run_due(self) -> list[str]:
        """Run here, in order, every stored occurrence job due by the runner's clock; what each did.

        What APScheduler's loop does on wall time, done on the injected clock (a runner started
        `paused`), so tests move time instead of sleeping.
        """
        assert self.scheduler is not None
        now = self.clock()
        done = []
        due = [j for j in self.scheduler.get_jobs(jobstore="default") if j.next_run_time <= now]
        for job in sorted(due, key=lambda j: j.next_run_time):
            self.scheduler.remove_job(job.id, jobstore="default")
            done.append(job.func(*job.args))
        return done

    def _scheduler(self) -> BackgroundScheduler:
        url = self.site.settings["database_url"]
        options: dict[str, Any] = {"connect_args": {"timeout": 30}} if self.site.store.is_sqlite else {}
        self._jobs_engine = create_engine(url, **options)
        store = SQLAlchemyJobStore(engine=self._jobs_engine)
        scheduler = BackgroundScheduler(
            jobstores={"default": store, "internal": MemoryJobStore()},
            executors={"default": {"type": "threadpool", "max_workers": 4}},
            # No grace limit: a job missed while we were down still runs; fire() applies late_by.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        internal = {"jobstore": "internal", "replace_existing": True, "misfire_grace_time": None}
        scheduler.add_job(
            "newsletter.runner:_watch",
            "interval",
            seconds=self.watch_seconds,
            id="watch",
            **internal,
        )
        scheduler.add_job(
            "newsletter.runner:_reconcile",
            "interval",
            minutes=self.reconcile_minutes,
            id="reconcile",
            **internal,
        )
        if self.feed_pull_minutes:
            scheduler.add_job(
                jobs.pull_feeds.__module__ + ":pull_feeds",
                "interval",
                minutes=self.feed_pull_minutes,
                id="feeds",
                next_run_time=datetime.now(UTC) + timedelta(seconds=5),
                **internal,
            )
        global _running
        _running = self
        return scheduler

    def sync_jobs(self) -> dict[str, int]:
        """Make the job store hold one date job per scheduled occurrence, at its due time.

        Jobs due now are left to APScheduler's loop (removing or replacing one it is processing
        would race it); a job that fires twice is harmless anyway, `claim` lets it through once.
        """
        assert self.scheduler is not None
        with self._sync_lock:
            # Jobs first, rows second: a job that fires in between is seen as claimed, not re-added.
            existing = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
            wanted = {f"{JOB_PREFIX}{row.id}": row for row in scheduled(self.site.store)}
            now = self.clock()
            settled = now + SETTLE
            added = removed = 0
            for job_id, row in wanted.items():
                when = fire_at(row)
                job = existing.get(job_id)
                if job is not None and (
                    job.next_run_time is None
                    or job.next_run_time <= settled
                    or abs((job.next_run_time - when).total_seconds()) < 1
                ):
                    continue
                self.scheduler.add_job(
                    jobs.FIRE,
                    "date",
                    run_date=max(when, now),
                    args=[row.id],
                    id=job_id,
                    name=row.key,
                    replace_existing=True,
                    jobstore="default",
                )
                added += 1
            for job_id in existing.keys() - wanted.keys():
                job = existing[job_id]
                if job_id.startswith(JOB_PREFIX) and job.next_run_time and job.next_run_time > settled:
                    try:
                        self.scheduler.remove_job(job_id, jobstore="default")
                        removed += 1
                    except JobLookupError:
                        pass
        return {"added": added, "removed": removed}

    def refresh(self, force: bool = False) -> bool:
        """Reload the schedule if a source changed (or `force`), reconcile and resync; False if invalid.

        An invalid edit is logged and ignored: the previous valid schedule keeps running.
        """
        with self._sync_lock:
            assert self.live is not None
            valid = self.live.refresh(force=force)
            # With the last valid schedule: overdue sends are still recorded, digests still roll on.
            changes = reconcile(self.site, self.clock(), self.schedules)
            if any(changes.summary().values()):
                log.info("reconciled: %s", changes.summary())
            self.sync_jobs()
            return valid

    def tick(self, force: bool) -> None:
        """What the interval jobs do: refresh on a change (or `force`), else resync the jobs."""
        with self._sync_lock:
            if self._stopping.is_set() or self.scheduler is None or self.live is None:
                return
            if force or self.live.changed():
                self.refresh(force=force)
            else:
                self.sync_jobs()

    def stop(self) -> None:
        """Stop firing (waiting for running jobs), release the lock."""
        global _running
        self._stopping.set()
        with self._sync_lock:  # a tick in progress finishes; later ones return at once
            pass
        if self.scheduler is not None:
            self.scheduler.pause()  # no new submissions while executors shut down
            # A pass of the scheduler's loop that began before the pause finishes before the executors
            # stop (APScheduler 3 checks the state only on entry); it holds this lock while it runs.
            with self.scheduler._jobstores_lock:
                pass
            self.scheduler.shutdown(wait=True)  # joins the scheduler's thread
            self.scheduler = None
            # Again: the loop's last pass may have opened a connection after the store's own dispose.
            self._jobs_engine.dispose()
        if _running is self:
            _running = None
            jobs.bind(None)
        self.lock.release()


_running: Runner | None = None


def _watch() -> None:
    """Interval job: pick up edits of schedules.yaml and pause/resume/cancel made by other processes."""
    runner = _running
    if runner is not None:
        runner.tick(force=False)


def _reconcile() -> None:
    """Interval job: roll recurring sends forward and record the missed ones."""
    runner = _running
    if runner is not None:
        runner.tick(force=True)
