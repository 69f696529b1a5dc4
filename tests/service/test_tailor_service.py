from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from services.common.bus import Bus
from services.common.db import create_tables
from services.tailor.directory import Recipient
from services.tailor.handlers import build_router
from services.tailor.programs import Program
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor, resolve_webhooks
from services.tailor.store import TailorStore, metadata
from tests.conftest import TEMPLATES_DIR, make_event
from tests.service.conftest import Recorder


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def tailor(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program,
                 small_directory: list[Recipient]) -> Tailor:
    await create_tables(engine, metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    hooks = {"fvm": resolve_webhooks(fvm, {}, "http://127.0.0.1:9/teams-sink")}
    t = Tailor({"fvm": fvm}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus, hooks, clock=Clock())
    broker.include_router(build_router(t, bus))
    return t


async def test_steering_decision_becomes_emails_cards_and_an_intranet_item(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    event = make_event(audiences=["politisk-styrgrupp", "programstyrgrupp"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    emails = recorder[topics.EMAIL_DELIVERY_REQUESTED]
    expected = {r.id for r in small_directory if r.role in ("politisk-styrgrupp", "programstyrgrupp")}
    assert {e["recipient_id"] for e in emails} == expected
    assert all(e["sender_address"] == "fvm@vgregion.se" for e in emails)
    [card] = recorder[topics.TEAMS_DELIVERY_REQUESTED]
    assert card["audience_id"] == "programstyrgrupp"
    assert card["webhook_url"] == "http://127.0.0.1:9/teams-sink/programstyrgrupp"
    [item] = recorder[topics.INTRANET_DELIVERY_REQUESTED]
    assert item["title"] == "Ny tidplan"
    [planned] = recorder[topics.EVENT_PLANNED]
    assert planned["status"] == "planned"
    assert planned["plan"]["targeted"]["programstyrgrupp"] == {"email": 14, "teams": 1}


async def test_redelivered_event_is_not_planned_twice(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    event = make_event(audiences=["politisk-styrgrupp"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    assert len(recorder[topics.EMAIL_DELIVERY_REQUESTED]) == 9
    assert len(recorder[topics.EVENT_PLANNED]) == 1


async def test_embargoed_event_is_held_then_released_when_the_instant_passes(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = tailor.clock
    assert isinstance(clock, Clock)
    event = make_event(audiences=["politisk-styrgrupp"], embargo_until=(clock.now + timedelta(hours=1)).isoformat())
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []
        assert recorder[topics.EVENT_PLANNED][0]["status"] == "embargoed"
        assert await tailor.release_due() == 0
        clock.now += timedelta(hours=1)
        assert await tailor.release_due() == 1
        assert await tailor.release_due() == 0
    assert len(recorder[topics.EMAIL_DELIVERY_REQUESTED]) == 9
    assert [p["status"] for p in recorder[topics.EVENT_PLANNED]] == ["embargoed", "planned"]


async def test_event_for_a_programme_without_configuration_is_dead_lettered(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    event = make_event(program="okand")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    [letter] = recorder[topics.DEAD_LETTER]
    assert letter["consumer"] == "tailor" and "has no configuration" in letter["reason"]


async def test_invalid_event_is_dead_lettered_with_every_invalid_field(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    async with TestKafkaBroker(broker):
        await bus.publish_json(topics.event_topic("steering.decision"),
                               b'{"type": "steering.decision", "program": "fvm", "payload": {}}', "k")
    [letter] = recorder[topics.DEAD_LETTER]
    for field in ("publisher", "importance", "payload.committee", "payload.title"):
        assert field in letter["reason"]


async def test_the_release_loop_lets_an_embargoed_event_out_when_its_time_comes(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program, small_directory: list[Recipient],
        recorder: Recorder) -> None:
    import asyncio

    await create_tables(engine, metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    tailor = Tailor({"fvm": fvm}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus, {})
    broker.include_router(build_router(tailor, bus))
    event = make_event(audiences=["politisk-styrgrupp"],
                       embargo_until=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    async with TestKafkaBroker(broker):
        loop = asyncio.create_task(tailor.run_embargo_releases())
        try:
            await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
            assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []
            for _ in range(100):  # up to 10 s for a 1 s embargo
                if any(p["status"] == "planned" for p in recorder[topics.EVENT_PLANNED]):
                    break
                await asyncio.sleep(0.1)
        finally:
            loop.cancel()
    assert len(recorder[topics.EMAIL_DELIVERY_REQUESTED]) == 9
    [released] = [p for p in recorder[topics.EVENT_PLANNED] if p["status"] == "planned"]
    assert datetime.fromisoformat(released["planned_at"]) >= event.embargo_until  # type: ignore[operator]


async def test_event_naming_a_target_group_the_programme_lacks_is_dead_lettered(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    event = make_event(audiences=["politisk-styrgrupp", "no-such-group"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    [letter] = recorder[topics.DEAD_LETTER]
    assert "has no target groups ['no-such-group']" in letter["reason"]
    assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []
