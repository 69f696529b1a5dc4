"""The scheduler owns time, never content: at each target group's digest cadence, and when a held event's
instant comes, it says so on the bus (`schedule.due`); the tailor decides what that means.

APScheduler 3 keeps the jobs in the service's own table (`scheduler_jobs`), so a job whose time passed
while the platform was down runs when it is back. Its persisted jobs name a module-level function, which
finds the scheduler that leads in this process (`fire`).
"""

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from contracts import topics
from contracts.lifecycle import EventCancelled
from contracts.schedule import DigestAsker, DigestDue, Period, ReleaseDue
from programs import Program
from services.common.bus import Bus
from services.scheduler.leader import LeaderLock
from services.scheduler.periods import LOCAL, SEND_AT, Cadence, last_whole_period
from services.scheduler.store import JOBS, Release, SchedulerStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: The scheduler that leads in this process, for the jobs APScheduler persisted by name.
_LEADING: list["Scheduler"] = []

#: A release the tailor has not confirmed is said again after this long (the bus may have lost it).
CONFIRM_WITHIN = timedelta(minutes=2)


async def fire(job: str, **kwargs: Any) -> None:
    """The function every persisted job names."""
    if not _LEADING:
        log.warning("scheduled job ran with no leading scheduler", extra={"job": job})
        return
    scheduler = _LEADING[-1]
    if job == "digest":
        await scheduler.emit_digest(kwargs["program"], kwargs["audience_id"], kwargs["cadence"])
    elif job == "release":
        await scheduler.emit_release(UUID(kwargs["event_id"]), kwargs["program"])
    elif job == "sweep":
        await scheduler.sweep()
    else:
        log.warning("unknown scheduled job skipped", extra={"job": job})


def digest_trigger(cadence: Cadence) -> CronTrigger:
    """07:00 Swedish time on the first day after each period: Mondays, or the 1st of the month."""
    if cadence == "weekly":
        return CronTrigger(day_of_week="mon", hour=SEND_AT.hour, minute=SEND_AT.minute, timezone=LOCAL)
    return CronTrigger(day=1, hour=SEND_AT.hour, minute=SEND_AT.minute, timezone=LOCAL)


class Scheduler:
    def __init__(self, programs: Mapping[str, Program], store: SchedulerStore, bus: Bus, jobs_engine: Engine,
                 lock: LeaderLock, clock: Clock = lambda: datetime.now(UTC), sweep_seconds: float = 60.0) -> None:
        self.programs = programs
        self.store = store
        self.bus = bus
        self.jobs_engine = jobs_engine
        self.lock = lock
        self.clock = clock
        self.sweep_seconds = sweep_seconds
        self.aps: AsyncIOScheduler | None = None
        self.leading = asyncio.Event()

    # What the jobs do -------------------------------------------------------------------------------------

    async def emit_digest(self, program: str, audience_id: str, cadence: Cadence, period: Period | None = None,
                          asked_by: DigestAsker = DigestAsker.SCHEDULE) -> DigestDue:
        due = DigestDue(program=program, audience_id=audience_id,
                        period=period or last_whole_period(cadence, self.clock()), due_at=self.clock(),
                        asked_by=asked_by)
        await self.bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        log.info("digest due", extra={"program": program, "audience_id": audience_id,
                                      "period": due.period.label})
        return due

    async def emit_release(self, event_id: UUID, program: str) -> None:
        due = ReleaseDue(program=program, event_id=event_id, due_at=self.clock())
        await self.bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        await self.store.mark(event_id, "emitted")
        log.info("release due", extra={"event_id": str(event_id)})

    async def sweep(self) -> int:
        """Say again every release whose time has passed and that the tailor has not confirmed."""
        now = self.clock()
        late = [r for r in await self.store.unreleased() if r.release_at + CONFIRM_WITHIN <= now]
        for release in late:
            await self.emit_release(release.event_id, release.program)
        return len(late)

    # What the bus tells it --------------------------------------------------------------------------------

    async def on_held(self, event_id: UUID, program: str, release_at: datetime) -> None:
        if await self.store.hold(event_id, program, release_at) and self.aps is not None:
            await asyncio.to_thread(self._add_release, event_id, program, release_at)

    async def on_released(self, event_id: UUID) -> None:
        await self.store.mark(event_id, "released")
        if self.aps is not None:
            await asyncio.to_thread(self._remove_release, event_id)

    async def on_cancelled(self, cancelled: EventCancelled) -> None:
        await self.store.cancel(cancelled.event_id, cancelled.program, cancelled.cancelled_at)
        if self.aps is not None:
            await asyncio.to_thread(self._remove_release, cancelled.event_id)
        log.info("held event cancelled: no release", extra={"event_id": str(cancelled.event_id)})

    # Leading ----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the lead, then schedule until stopped or until the lead is lost (then wait again)."""
        while True:
            async with self.lock.held() as lost:
                await self._lead()
                try:
                    await lost.wait()
                finally:
                    self._stand_down()

    async def _lead(self) -> None:
        self.aps = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.jobs_engine, tablename=JOBS.name)},
            job_defaults={"coalesce": True, "misfire_grace_time": 7 * 24 * 3600, "max_instances": 1},
            timezone=LOCAL)
        self.aps.start(paused=True)  # jobs are put right before anything runs
        await asyncio.to_thread(self._put_jobs, await self.store.unreleased())
        _LEADING.append(self)
        self.aps.resume()
        self.leading.set()
        log.info("scheduler leading", extra={"jobs": len(self.aps.get_jobs())})

    def _stand_down(self) -> None:
        self.leading.clear()
        if self in _LEADING:
            _LEADING.remove(self)
        if self.aps is not None:
            self.aps.shutdown(wait=False)
            self.aps = None

    def _put_jobs(self, releases: list[Release]) -> None:
        """Every job, in the job store. APScheduler 3's job store is synchronous: its writes run on a worker
        thread (APScheduler's methods are thread-safe), never on the event loop, so that a write waiting for
        SQLite's lock cannot stall the loop, and with it the async transaction holding that lock."""
        self._sync_digest_jobs()
        for release in releases:
            self._add_release(release.event_id, release.program, release.release_at)
        assert self.aps is not None
        self.aps.add_job(fire, IntervalTrigger(seconds=self.sweep_seconds), kwargs={"job": "sweep"}, id="sweep",
                         replace_existing=True)

    def _remove_release(self, event_id: UUID) -> None:
        if self.aps is not None and self.aps.get_job(f"release:{event_id}") is not None:
            self.aps.remove_job(f"release:{event_id}")

    def _sync_digest_jobs(self) -> None:
        """Two jobs per target group with a cadence, weekly and monthly: the group's own, and the other for
        the members who chose it (the tailor sends each member theirs). A job whose trigger is unchanged is
        kept as it is, so that a run missed while the platform was down still happens."""
        assert self.aps is not None
        wanted = {f"digest:{code}:{a.id}:{cadence}": (code, a.id, cadence) for code, p in self.programs.items()
                  for a in p.audiences if a.digest != "none" for cadence in ("weekly", "monthly")}
        for job in self.aps.get_jobs():
            if job.id.startswith("digest:") and job.id not in wanted:
                job.remove()
        for job_id, (program, audience_id, cadence) in wanted.items():
            trigger = digest_trigger(cadence)  # type: ignore[arg-type]
            existing = self.aps.get_job(job_id)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            self.aps.add_job(fire, trigger, id=job_id, replace_existing=True,
                             kwargs={"job": "digest", "program": program, "audience_id": audience_id,
                                     "cadence": cadence})

    def _add_release(self, event_id: UUID, program: str, release_at: datetime) -> None:
        assert self.aps is not None
        self.aps.add_job(fire, DateTrigger(run_date=max(release_at, datetime.now(UTC))), id=f"release:{event_id}",
                         replace_existing=True, misfire_grace_time=None,
                         kwargs={"job": "release", "event_id": str(event_id), "program": program})

    def stop(self) -> None:
        self._stand_down()
