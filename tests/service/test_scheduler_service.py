"""The scheduler's decisions and subscriber, with an injected clock: `tick` says what is due by it."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import DeliveryPlan, EventPlanned
from contracts.lifecycle import EventCancelled
from programs import Program
from services.common.bus import Bus
from services.common.db import create_tables
from services.scheduler.handlers import build_router
from services.scheduler.leader import LeaderLock
from services.scheduler.service import Scheduler
from services.scheduler.store import SchedulerStore, metadata
from tests.service.conftest import Clock, Recorder


@pytest.fixture
async def scheduler(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program) -> Scheduler:
    await create_tables(engine, metadata)
    s = Scheduler({"fvm": fvm}, SchedulerStore(engine), bus, LeaderLock(engine),
                  clock=Clock(datetime(2026, 12, 1, 6, 0, tzinfo=UTC)), sweep_seconds=24 * 3600)
    broker.include_router(build_router(s, bus))
    return s


def planned(event_id: object, status: str, until: datetime | None = None) -> EventPlanned:
    plan = DeliveryPlan(event_id=event_id, program="fvm", groups=(), refused=(), targeted={}, embargoed_until=until)
    return EventPlanned(plan=plan, status=status, planned_at=datetime(2026, 12, 1, tzinfo=UTC))


async def test_a_digest_covers_the_last_whole_period_by_the_schedulers_clock(
        scheduler: Scheduler, broker: KafkaBroker, recorder: Recorder) -> None:
    async with TestKafkaBroker(broker):
        await scheduler.emit_digest("fvm", "politisk-styrgrupp", "monthly")
        await scheduler.emit_digest("fvm", "programstyrgrupp", "weekly")
    labels = [(d["audience_id"], d["period"]["label"]) for d in recorder[topics.SCHEDULE_DUE]]
    assert labels == [("politisk-styrgrupp", "2026-11"), ("programstyrgrupp", "2026-W48")]


async def test_a_held_event_is_remembered_until_the_tailor_announces_it_went_out_and_is_said_again_if_late(
        scheduler: Scheduler, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = scheduler.clock
    assert isinstance(clock, Clock)
    event_id = uuid4()
    async with TestKafkaBroker(broker):
        held = planned(event_id, "embargoed", clock.now + timedelta(hours=1))
        await bus.publish(topics.EVENT_PLANNED, held, str(event_id))
        [waiting] = await scheduler.store.unreleased()
        assert waiting.release_at == clock.now + timedelta(hours=1)
        assert await scheduler.tick() == clock.now + timedelta(hours=1)  # not due yet: the next wake-up
        clock.now += timedelta(hours=1)
        await scheduler.tick()
        await scheduler.tick()  # said once at its instant, not again at once
        clock.now += timedelta(minutes=3)  # the tailor has not confirmed it: said again
        await scheduler.tick()
        releases = [d["event_id"] for d in recorder[topics.SCHEDULE_DUE] if d["kind"] == "release"]
        assert releases == [str(event_id)] * 2
        await bus.publish(topics.EVENT_PLANNED, planned(event_id, "planned"), str(event_id))
        assert await scheduler.store.unreleased() == []
        clock.now += timedelta(minutes=10)
        await scheduler.tick()
        await bus.publish(topics.EVENT_PLANNED, held, str(event_id))  # a late repeat does not hold it again
    assert await scheduler.store.unreleased() == []
    assert [d["event_id"] for d in recorder[topics.SCHEDULE_DUE] if d["kind"] == "release"] == [str(event_id)] * 2


async def test_a_cancelled_event_is_never_released_even_when_its_hold_is_heard_after_the_cancel(
        scheduler: Scheduler, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = scheduler.clock
    assert isinstance(clock, Clock)
    first, second = uuid4(), uuid4()
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EVENT_PLANNED, planned(first, "embargoed", clock.now + timedelta(hours=1)), str(first))
        for event_id in (first, second):
            cancelled = EventCancelled(event_id=event_id, program="fvm", cancelled_at=clock.now)
            await bus.publish(topics.EVENT_CANCELLED, cancelled, cancelled.bus_key)
        # The second one's hold arrives after its cancel (another topic, another order): it is not held.
        await bus.publish(topics.EVENT_PLANNED, planned(second, "embargoed", clock.now + timedelta(hours=1)),
                          str(second))
        clock.now += timedelta(hours=2)
        await scheduler.tick()
    assert await scheduler.store.unreleased() == []
    assert [d for d in recorder[topics.SCHEDULE_DUE] if d["kind"] == "release"] == []


async def test_a_scheduler_down_for_two_periods_says_both_periods_digests_each_once(
        scheduler: Scheduler, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = scheduler.clock
    assert isinstance(clock, Clock)
    async with TestKafkaBroker(broker):
        await scheduler.tick()  # Tuesday 1 December 07:00: the schedule starts; nothing is due
        assert recorder[topics.SCHEDULE_DUE] == []
        clock.now = datetime(2026, 12, 14, 6, 30, tzinfo=UTC)  # down until Monday the 14th, 07:30 Swedish time
        await scheduler.tick()
        await scheduler.tick()
        clock.now = datetime(2026, 12, 14, 23, 0, tzinfo=UTC)
        await scheduler.tick()
    said = {(d["audience_id"], d["period"]["label"]) for d in recorder[topics.SCHEDULE_DUE]}
    scheduled = {a.id for a in scheduler.programs["fvm"].audiences if a.digest != "none"}
    assert said == {(group, week) for group in scheduled for week in ("2026-W49", "2026-W50")}
    assert len(recorder[topics.SCHEDULE_DUE]) == len(said)  # each once


async def test_missed_periods_beyond_the_catch_up_bound_are_left_out_and_the_newest_are_said(
        scheduler: Scheduler, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = scheduler.clock
    assert isinstance(clock, Clock)
    scheduler.catch_up = 2
    scheduler.programs = {"fvm": scheduler.programs["fvm"].model_copy(update={"audiences": tuple(
        a for a in scheduler.programs["fvm"].audiences if a.id == "programstyrgrupp")})}
    async with TestKafkaBroker(broker):
        await scheduler.tick()
        clock.now = datetime(2027, 3, 2, 6, 0, tzinfo=UTC)  # three months and thirteen weeks later
        await scheduler.tick()
    said = [d["period"]["label"] for d in recorder[topics.SCHEDULE_DUE]]
    assert sorted(said) == ["2027-01", "2027-02", "2027-W07", "2027-W08"]
