"""Quiet hours through the tailor and the scheduler on the test broker, driven by their clocks: what waits,
what goes at once, and what the scheduler says when the hours end."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import DeliveriesScheduled
from contracts.schedule import ReleaseDue
from programs import Program
from services.common.bus import Bus
from services.common.db import create_tables
from services.scheduler.handlers import build_router as scheduler_router
from services.scheduler.leader import LeaderLock
from services.scheduler.service import Scheduler
from services.scheduler.store import SchedulerStore
from services.scheduler.store import metadata as scheduler_metadata
from services.tailor.directory import Recipient
from services.tailor.handlers import build_router as tailor_router
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor
from services.tailor.store import TailorStore
from services.tailor.store import metadata as tailor_metadata
from tests.conftest import TEMPLATES_DIR, make_event
from tests.service.conftest import Clock, Recorder
from tests.unit.test_quiet_hours import quiet

HALF_PAST_TEN = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)  # 22:30 in Stockholm
SEVEN = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # 07:00 in Stockholm


@pytest.fixture
def clock() -> Clock:
    return Clock(HALF_PAST_TEN)


@pytest.fixture
async def night(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program, small_directory: list[Recipient],
                clock: Clock) -> tuple[Tailor, Scheduler]:
    """The tailor and the scheduler of a programme whose political steering group has quiet hours 21–07."""
    program = quiet(fvm, "politisk-styrgrupp")
    await create_tables(engine, tailor_metadata)
    await create_tables(engine, scheduler_metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    tailor = Tailor({"fvm": program}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus, clock=clock)
    scheduler = Scheduler({"fvm": program}, SchedulerStore(engine), bus, LeaderLock(engine), clock=clock,
                          sweep_seconds=24 * 3600)
    broker.include_router(tailor_router(tailor, bus))
    broker.include_router(scheduler_router(scheduler, bus))
    return tailor, scheduler


def mailed(recorder: Recorder, audience_id: str) -> set[str]:
    return {r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["audience_id"] == audience_id
            for r in c["recipients"]}


async def test_a_newsletter_due_at_half_past_ten_reaches_a_quiet_group_at_seven_and_the_others_at_once(
        night: tuple[Tailor, Scheduler], bus: Bus, broker: KafkaBroker, clock: Clock,
        small_directory: list[Recipient]) -> None:
    tailor, scheduler = night
    recorder = Recorder(broker, topics.EMAIL_DELIVERY_REQUESTED, topics.INTRANET_DELIVERY_REQUESTED,
                        topics.DELIVERIES_SCHEDULED, topics.SCHEDULE_DUE, topics.EVENT_PLANNED)
    event = make_event("newsletter.issue", audiences=["politisk-styrgrupp", "programstyrgrupp"])
    quiet_group = {r.id for r in small_directory if r.role == "politisk-styrgrupp"}
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        assert mailed(recorder, "programstyrgrupp")  # no quiet hours: at once
        assert len(recorder[topics.INTRANET_DELIVERY_REQUESTED]) == 1  # the intranet is read, never pushed
        assert mailed(recorder, "politisk-styrgrupp") == set()
        [scheduled] = recorder[topics.DELIVERIES_SCHEDULED]
        assert DeliveriesScheduled.model_validate(scheduled).at == SEVEN
        [planned] = recorder[topics.EVENT_PLANNED]
        group = next(g for g in planned["plan"]["groups"] if g["audience_id"] == "politisk-styrgrupp")
        assert "quiet hours 21:00–07:00: email waits until 2026-12-02 07:00 (rule 10)" in group["reasons"]

        await tailor.recover()  # a restart in the night sends nothing that waits
        assert mailed(recorder, "politisk-styrgrupp") == set()

        items, mails = len(recorder[topics.INTRANET_DELIVERY_REQUESTED]), len(recorder[topics.EMAIL_DELIVERY_REQUESTED])
        clock.now = SEVEN - timedelta(minutes=1)
        assert await scheduler.tick() == SEVEN  # the scheduler wakes when the quiet hours end
        assert recorder[topics.SCHEDULE_DUE] == []
        clock.now = SEVEN
        await scheduler.tick()
        [due] = recorder[topics.SCHEDULE_DUE]
        assert ReleaseDue.model_validate(due).event_id == event.event_id
        assert mailed(recorder, "politisk-styrgrupp") == quiet_group
        assert await scheduler.store.unreleased_waits() == []  # the plan announced at seven confirmed it
        assert len(recorder[topics.INTRANET_DELIVERY_REQUESTED]) == items  # only what waited went at seven
        assert {c["audience_id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED][mails:]} == {"politisk-styrgrupp"}


async def test_a_must_know_alert_at_half_past_ten_goes_at_once_despite_quiet_hours(
        night: tuple[Tailor, Scheduler], bus: Bus, broker: KafkaBroker, small_directory: list[Recipient]) -> None:
    recorder = Recorder(broker, topics.EMAIL_DELIVERY_REQUESTED, topics.DELIVERIES_SCHEDULED, topics.EVENT_PLANNED)
    event = make_event(audiences=["politisk-styrgrupp"])  # a must-know steering decision
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    assert mailed(recorder, "politisk-styrgrupp") == {r.id for r in small_directory if r.role == "politisk-styrgrupp"}
    assert recorder[topics.DELIVERIES_SCHEDULED] == []
    [group] = recorder[topics.EVENT_PLANNED][0]["plan"]["groups"]
    assert "must-know alert: sent at once despite the quiet hours 21:00–07:00 (rule 10)" in group["reasons"]


async def test_a_digest_due_in_a_groups_quiet_hours_waits_until_they_end(
        night: tuple[Tailor, Scheduler], broker: KafkaBroker, clock: Clock) -> None:
    _, scheduler = night
    recorder = Recorder(broker, topics.SCHEDULE_DUE)
    # The political steering group's monthly digest is due at 07:00 on 1 December; say its quiet hours run to 08:00.
    scheduler.programs = {"fvm": quiet(scheduler.programs["fvm"], "politisk-styrgrupp", hours="21:00-08:00")}
    clock.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    async with TestKafkaBroker(broker):
        await scheduler.tick()  # the schedule starts: November's digests are the next due
        clock.now = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 07:30 in Stockholm
        next_due = await scheduler.tick()
        due = {(d["audience_id"], d["period"]["label"]) for d in recorder[topics.SCHEDULE_DUE]}
        assert ("strategisk-styrgrupp", "2026-11") in due  # no quiet hours: on time
        assert ("politisk-styrgrupp", "2026-11") not in due
        assert next_due <= datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm
        clock.now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
        await scheduler.tick()
        due = [(d["audience_id"], d["period"]["label"]) for d in recorder[topics.SCHEDULE_DUE]]
        assert due.count(("politisk-styrgrupp", "2026-11")) == 1


async def test_a_wait_the_tailor_has_not_confirmed_is_said_again_and_a_late_plan_does_not_confirm_it(
        night: tuple[Tailor, Scheduler], broker: KafkaBroker, clock: Clock) -> None:
    _, scheduler = night
    recorder = Recorder(broker, topics.SCHEDULE_DUE)
    event_id = uuid4()
    async with TestKafkaBroker(broker):
        scheduled = DeliveriesScheduled(event_id=event_id, program="fvm", at=SEVEN, audiences=("politisk-styrgrupp",),
                                        reason="quiet hours", scheduled_at=clock.now)
        await scheduler.on_scheduled(scheduled)
        await scheduler.on_scheduled(scheduled)  # a repeat (after a tailor's restart) changes nothing
        await scheduler.on_released(event_id, HALF_PAST_TEN)  # the plan of 22:30 is no receipt for seven
        clock.now = SEVEN
        await scheduler.tick()
        clock.now = SEVEN + timedelta(minutes=3)  # no word from the tailor: said again
        await scheduler.tick()
        assert [d["event_id"] for d in recorder[topics.SCHEDULE_DUE]] == [str(event_id)] * 2
        await scheduler.on_released(event_id, clock.now)
        assert await scheduler.store.unreleased_waits() == []
