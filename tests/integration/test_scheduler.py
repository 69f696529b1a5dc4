"""The scheduler with its schedule in its own tables: a release is said at its instant, one due while nobody
scheduled is said when a replica leads again, and on PostgreSQL one replica leads while another waits and
takes over without saying a period twice."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.schedule import DigestDue, ReleaseDue
from programs import Program, load_programs
from services.common.db import create_engine
from services.common.migrations import upgrade
from services.scheduler.leader import LeaderLock
from services.scheduler.periods import last_whole_period
from services.scheduler.service import Scheduler
from services.scheduler.store import CADENCES, MIGRATIONS, DigestKey, SchedulerStore
from tests.conftest import ROOT
from tests.integration.conftest import POSTGRES_URL, _with_search_path
from tests.waiting import wait_for


class RecordingBus:
    def __init__(self) -> None:
        self.sent: list[DigestDue | ReleaseDue] = []

    async def publish(self, topic: str, message: Any, key: str) -> None:
        self.sent.append(message)

    def digests(self) -> list[tuple[str, str, str]]:
        return [(d.program, d.audience_id, d.period.label)
                for d in self.sent if isinstance(d, DigestDue)]


@pytest.fixture(scope="module")
def programs() -> dict[str, Program]:
    return load_programs(ROOT / "deploy" / "programs")


def schedules(programs: dict[str, Program]) -> set[DigestKey]:
    return {(code, a.id, cadence) for code, p in programs.items() for a in p.audiences
            if a.digest != "none" for cadence in CADENCES}


async def leading(scheduler: Scheduler) -> "asyncio.Task[None]":
    task = asyncio.create_task(scheduler.run())
    await wait_for(scheduler.leading.is_set, timeout=20, what="the scheduler to lead")
    return task


async def stop(scheduler: Scheduler, task: "asyncio.Task[None]") -> None:
    """As a killed replica: its task ends, its lock's connection closes."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    scheduler.stop()


async def test_a_release_is_said_at_its_instant_and_one_due_while_nobody_led_when_a_replica_leads_again(
        tmp_path: Path, programs: dict[str, Program]) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scheduler.db'}")
    await upgrade(engine, MIGRATIONS)
    bus = RecordingBus()

    def replica() -> Scheduler:  # sweeps an hour apart: only the schedule's own wake-ups say anything sooner
        return Scheduler(programs, SchedulerStore(engine), bus, LeaderLock(engine), sweep_seconds=3600)  # type: ignore[arg-type]

    try:
        first = replica()
        task = await leading(first)
        soon = uuid4()
        await first.on_held(soon, "fvm", datetime.now(UTC) + timedelta(seconds=1))
        await wait_for(lambda: any(d.event_id == soon for d in bus.sent if isinstance(d, ReleaseDue)),
                       timeout=20, what="the release at its instant")
        marks = await first.store.digest_marks()
        assert set(marks) == schedules(programs)  # every group's schedule, in the table
        later = uuid4()
        await first.on_held(later, "fvm", datetime.now(UTC) + timedelta(seconds=2))
        await stop(first, task)  # down before its instant comes

        second = replica()
        task = await leading(second)
        await wait_for(lambda: any(d.event_id == later for d in bus.sent if isinstance(d, ReleaseDue)),
                       timeout=20, what="the release missed while nobody led")
        assert bus.digests() == []  # no digest period has ended since the schedule began
        for event_id in (soon, later):
            await second.on_released(event_id, datetime.now(UTC))
        assert await second.store.unreleased() == []
        await stop(second, task)
    finally:
        await engine.dispose()


async def test_two_replicas_on_postgresql_make_one_digest_per_group_and_period_and_the_standby_takes_over(
        postgres_schema: str, programs: dict[str, Program]) -> None:
    engines: list[AsyncEngine] = [_with_search_path(POSTGRES_URL, postgres_schema) for _ in range(2)]
    await upgrade(engines[0], MIGRATIONS)
    store = SchedulerStore(engines[0])
    # A fixed clock, the middle of a month and a week: by the wall clock, between midnight and 07:00 in
    # Stockholm on a Monday or the 1st, the last whole period's digest is not yet due and none would come.
    now = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    for key in schedules(programs):  # the last period said was the one before the last whole one
        last_whole = last_whole_period(key[2], now)
        await store.mark_digest(key, last_whole_period(key[2], last_whole.start), now)
    bus = RecordingBus()
    a, b = (Scheduler(programs, SchedulerStore(e), bus, LeaderLock(e, poll_seconds=0.1),  # type: ignore[arg-type]
                      clock=lambda: now) for e in engines)
    try:
        task_a = await leading(a)
        task_b = asyncio.create_task(b.run())
        await wait_for(lambda: b.lock.attempts >= 3, timeout=20, what="the standby to try the lock")
        assert not b.leading.is_set()
        wanted = schedules(programs)
        await wait_for(lambda: len(bus.digests()) >= len(wanted), timeout=20, what="every group's digest")
        assert len(bus.digests()) == len(set(bus.digests())) == len(wanted)  # one per group and period

        async def all_recorded() -> bool:  # a digest is said, then recorded: a leader killed between may repeat it
            marks = await store.digest_marks()
            return all(marks.get(key) == last_whole_period(key[2], now) for key in wanted)

        await wait_for(all_recorded, timeout=20, what="the leader to record every period it said")
        await stop(a, task_a)
        await wait_for(b.leading.is_set, timeout=20, what="the standby to take over")
        await b.tick()
        assert len(bus.digests()) == len(wanted)  # the new leader does not say the period again
        await stop(b, task_b)
    finally:
        for e in engines:
            await e.dispose()
