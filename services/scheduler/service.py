"""The scheduler owns time, never content: at each target group's digest cadence, and when a held event's
instant comes, it says so on the bus (`schedule.due`); the tailor decides what that means.

The schedule is the service's own two tables (`store.py`): the last period said per target group and cadence,
and the held events not yet confirmed released. The leader wakes when the next thing is due (or when a new
hold arrives), says everything due by its clock, and records each in the same breath, all through the async
engine: nothing ever writes on the event loop's thread, and nothing is kept in memory that a replica taking
over would need. A platform down for two periods sends both periods' digests when it is back, each once, up
to BUDKAVLE_SCHEDULER_CATCH_UP periods.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

from contracts import topics
from contracts.deliveries import DeliveriesScheduled
from contracts.lifecycle import EventCancelled
from contracts.schedule import DigestAsker, DigestDue, Period, ReleaseDue
from programs import Program
from services.common.bus import Bus
from services.scheduler.leader import LeaderLock
from services.scheduler.periods import Cadence, following, last_whole_period, periods_due, send_time
from services.scheduler.store import CADENCES, CONFIRM_WITHIN, DigestKey, SchedulerStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

class Scheduler:
    def __init__(self, programs: Mapping[str, Program], store: SchedulerStore, bus: Bus, lock: LeaderLock,
                 clock: Clock = lambda: datetime.now(UTC), sweep_seconds: float = 60.0, catch_up: int = 4) -> None:
        self.programs = programs
        self.store = store
        self.bus = bus
        self.lock = lock
        self.clock = clock
        self.sweep_seconds = sweep_seconds  # the longest it sleeps: a clock moved by hand is seen within it
        self.catch_up = catch_up
        self.leading = asyncio.Event()
        self._wake = asyncio.Event()

    # What it says -----------------------------------------------------------------------------------------

    async def emit_digest(self, program: str, audience_id: str, cadence: Cadence, period: Period | None = None,
                          asked_by: DigestAsker = DigestAsker.SCHEDULE) -> DigestDue:
        due = DigestDue(program=program, audience_id=audience_id,
                        period=period or last_whole_period(cadence, self.clock()), due_at=self.clock(),
                        asked_by=asked_by)
        await self.bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        log.info("digest due", extra={"program": program, "audience_id": audience_id,
                                      "period": due.period.label})
        return due

    async def emit_release(self, event_id: UUID, program: str, waited_until: datetime | None = None) -> None:
        """Say that a held event may go out, or (`waited_until`) that its deliveries waiting for quiet hours to
        end may: the tailor knows which from its own record."""
        due = ReleaseDue(program=program, event_id=event_id, due_at=self.clock())
        await self.bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        if waited_until is None:
            await self.store.mark(event_id, "emitted", self.clock())
        else:
            await self.store.mark_waits(event_id, "emitted", self.clock(), until_by=waited_until)
        log.info("release due", extra={"event_id": str(event_id), "quiet_hours": waited_until is not None})

    async def tick(self) -> datetime:
        """Say everything due by the clock, each once, and record it; return when something is due next."""
        now = self.clock()
        upcoming = [now + timedelta(seconds=self.sweep_seconds)]
        marks = await self.store.digest_marks()
        for key in self._digest_keys():
            program, audience_id, cadence = key
            last = marks.get(key)
            if last is None:  # a group seen for the first time: its schedule starts with the next period
                last = last_whole_period(cadence, now)
                await self.store.mark_digest(key, last, now)
            due, left_out = periods_due(cadence, last, now, self.catch_up)
            quiet_end = self._quiet_end(program, audience_id, now) if due else None
            if quiet_end is not None:  # rule 10: a digest due in the group's quiet hours waits until they end
                upcoming.append(quiet_end)
                continue
            if left_out:
                log.warning("digest periods missed beyond the catch-up bound are not sent", extra={
                    "program": program, "audience_id": audience_id, "cadence": cadence, "periods": left_out})
            for period in due:
                await self.emit_digest(program, audience_id, cadence, period)
                await self.store.mark_digest(key, period, now)
                last = period
            upcoming.append(send_time(following(cadence, last)))
        for release in await self.store.unreleased():
            if release.due_at() <= now:
                await self.emit_release(release.event_id, release.program)
                upcoming.append(now + CONFIRM_WITHIN)
            else:
                upcoming.append(release.due_at())
        for waiting in await self.store.unreleased_waits():
            if waiting.due_at() <= now:
                await self.emit_release(waiting.event_id, waiting.program, waiting.release_at)
                upcoming.append(now + CONFIRM_WITHIN)
            else:
                upcoming.append(waiting.due_at())
        return min(upcoming)

    def _quiet_end(self, program: str, audience_id: str, now: datetime) -> datetime | None:
        audience = self.programs[program].audience(audience_id)
        quiet = audience.quiet_hours if audience is not None else None
        return quiet.ends_after(now) if quiet is not None else None

    def _digest_keys(self) -> list[DigestKey]:
        """Two schedules per target group with a cadence, weekly and monthly: the group's own, and the other
        for the members who chose it (the tailor sends each member theirs)."""
        return [(code, a.id, cadence) for code, p in self.programs.items() for a in p.audiences
                if a.digest != "none" for cadence in CADENCES]

    # What the bus tells it --------------------------------------------------------------------------------

    async def on_held(self, event_id: UUID, program: str, release_at: datetime) -> None:
        if await self.store.hold(event_id, program, release_at):
            self._wake.set()  # the leader's next wake-up may now be sooner

    async def on_released(self, event_id: UUID, planned_at: datetime) -> None:
        """The tailor's plan, announced at `planned_at`, says the event went out: its hold is released, and so
        is every wait of it that had ended by then."""
        await self.store.mark(event_id, "released", self.clock())
        await self.store.mark_waits(event_id, "released", self.clock(), until_by=planned_at)

    async def on_scheduled(self, scheduled: DeliveriesScheduled) -> None:
        await self.store.wait(scheduled.event_id, scheduled.program, scheduled.at)
        self._wake.set()

    async def on_cancelled(self, cancelled: EventCancelled) -> None:
        await self.store.cancel(cancelled.event_id, cancelled.program, cancelled.cancelled_at)
        log.info("held event cancelled: no release", extra={"event_id": str(cancelled.event_id)})

    # Leading ----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the lead, then schedule until stopped or until the lead is lost (then wait again)."""
        while True:
            async with self.lock.held() as lost:
                self.leading.set()
                log.info("scheduler leading")
                try:
                    await self._lead(lost)
                finally:
                    self.leading.clear()

    async def _lead(self, lost: asyncio.Event) -> None:
        while not lost.is_set():
            self._wake.clear()
            next_due = await self.tick()
            pause = min(max((next_due - self.clock()).total_seconds(), 0.0), self.sweep_seconds)
            woken = asyncio.ensure_future(self._wake.wait())
            lead_lost = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait((woken, lead_lost), timeout=pause, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (woken, lead_lost):
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

    def stop(self) -> None:
        self.leading.clear()
