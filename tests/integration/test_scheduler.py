"""The scheduler on APScheduler with its jobs in its own table: jobs survive a restart, and on PostgreSQL one
replica leads while another waits and takes over."""

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.schedule import DigestDue, ReleaseDue
from programs import Program, load_programs
from services.common.db import create_engine
from services.common.migrations import upgrade
from services.scheduler.leader import LeaderLock
from services.scheduler.main import sync_database_url
from services.scheduler.service import Scheduler
from services.scheduler.store import JOBS, MIGRATIONS, SchedulerStore
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


def groups_with_a_cadence(programs: dict[str, Program]) -> set[str]:
    return {f"digest:{code}:{a.id}:{cadence}" for code, p in programs.items() for a in p.audiences
            if a.digest != "none" for cadence in ("weekly", "monthly")}


async def leading(scheduler: Scheduler) -> "asyncio.Task[None]":
    task = asyncio.create_task(scheduler.run())
    await wait_for(scheduler.leading.is_set, timeout=20, what="the scheduler to lead")
    return task


async def stop(scheduler: Scheduler, task: "asyncio.Task[None]") -> None:
    """As a killed replica: its task ends, its lock's connection closes."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    scheduler.stop()


async def test_jobs_live_in_the_services_table_and_a_release_due_while_it_was_down_happens_after_a_restart(
        tmp_path: Path, programs: dict[str, Program]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'scheduler.db'}"
    engine = create_engine(url)
    await upgrade(engine, MIGRATIONS)
    jobs_engine = sqlalchemy.create_engine(sync_database_url(url))
    bus = RecordingBus()

    def replica() -> Scheduler:
        return Scheduler(programs, SchedulerStore(engine), bus, jobs_engine, LeaderLock(engine))  # type: ignore[arg-type]

    try:
        first = replica()
        task = await leading(first)
        async with engine.connect() as conn:
            jobs = {r.id: r.next_run_time for r in (await conn.execute(select(JOBS))).all()}
        assert groups_with_a_cadence(programs) <= set(jobs) and "sweep" in jobs
        weekly = datetime.fromtimestamp(jobs["digest:fvm:programstyrgrupp:weekly"], ZoneInfo("Europe/Stockholm"))
        assert (weekly.weekday(), weekly.hour, weekly.minute) == (0, 7, 0)  # Monday 07:00, Swedish time
        monthly = datetime.fromtimestamp(jobs["digest:fvm:politisk-styrgrupp:monthly"], ZoneInfo("Europe/Stockholm"))
        assert (monthly.day, monthly.hour) == (1, 7)
        event_id = uuid4()
        await first.on_held(event_id, "fvm", datetime.now(UTC) + timedelta(seconds=2))
        await stop(first, task)  # down before the instant comes

        second = replica()
        task = await leading(second)
        await wait_for(lambda: any(d.event_id == event_id for d in bus.sent), timeout=20, what="the release")
        [release] = [d for d in bus.sent if isinstance(d, ReleaseDue)]
        assert release.program == "fvm"
        assert bus.digests() == []  # no digest period has ended since the jobs were made
        await second.on_released(event_id)
        assert await second.store.unreleased() == []
        await stop(second, task)
    finally:
        jobs_engine.dispose()
        await engine.dispose()


@pytest.fixture
async def postgres_schema(postgres: str) -> AsyncIterator[str]:
    schema = f"sched_{os.getpid()}_{uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def test_two_replicas_on_postgresql_make_one_digest_per_group_and_period_and_the_standby_takes_over(
        postgres_schema: str, programs: dict[str, Program]) -> None:
    engines: list[AsyncEngine] = [_with_search_path(POSTGRES_URL, postgres_schema) for _ in range(2)]
    jobs_engines = [sqlalchemy.create_engine(sync_database_url(POSTGRES_URL),
                                             connect_args={"options": f"-csearch_path={postgres_schema}"})
                    for _ in range(2)]
    await upgrade(engines[0], MIGRATIONS)
    bus = RecordingBus()
    a, b = (Scheduler(programs, SchedulerStore(e), bus, j, LeaderLock(e, poll_seconds=0.1))  # type: ignore[arg-type]
            for e, j in zip(engines, jobs_engines, strict=True))
    try:
        task_a = await leading(a)
        task_b = asyncio.create_task(b.run())
        await wait_for(lambda: b.lock.attempts >= 3, timeout=20, what="the standby to try the lock")
        assert not b.leading.is_set()

        assert a.aps is not None
        now = datetime.now(UTC)
        for job in a.aps.get_jobs():
            if job.id.startswith("digest:"):
                job.modify(next_run_time=now)  # the period ends now, for every group
        wanted = groups_with_a_cadence(programs)
        await wait_for(lambda: len(bus.digests()) >= len(wanted), timeout=20, what="every group's digest")
        assert len(bus.digests()) == len(set(bus.digests())) == len(wanted)  # one per group and period

        await stop(a, task_a)
        await wait_for(b.leading.is_set, timeout=20, what="the standby to take over")
        assert b.aps is not None and {j.id for j in b.aps.get_jobs()} >= wanted
        assert len(bus.digests()) == len(wanted)  # the new leader does not run the period again
        await stop(b, task_b)
    finally:
        for j in jobs_engines:
            j.dispose()
        for e in engines:
            await e.dispose()
