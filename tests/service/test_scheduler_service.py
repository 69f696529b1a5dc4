"""The scheduler's decisions and subscriber, with an injected clock (not leading: no APScheduler runs)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import sqlalchemy
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
    s = Scheduler({"fvm": fvm}, SchedulerStore(engine), bus, sqlalchemy.create_engine("sqlite://"),
                  LeaderLock(engine), clock=Clock(datetime(2026, 12, 1, 6, 0, tzinfo=UTC)))
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
        assert await scheduler.sweep() == 0  # not due yet
        clock.now += timedelta(hours=1, minutes=5)  # due, and the tailor has not confirmed it
        assert await scheduler.sweep() == 1
        assert [d["event_id"] for d in recorder[topics.SCHEDULE_DUE]] == [str(event_id)]
        await bus.publish(topics.EVENT_PLANNED, planned(event_id, "planned"), str(event_id))
        assert await scheduler.store.unreleased() == []
        assert await scheduler.sweep() == 0
        await bus.publish(topics.EVENT_PLANNED, held, str(event_id))  # a late repeat does not hold it again
    assert await scheduler.store.unreleased() == []


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
        assert await scheduler.sweep() == 0
    assert await scheduler.store.unreleased() == [] and recorder[topics.SCHEDULE_DUE] == []
