import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.lifecycle import EventCancelled
from contracts.preferences import PreferencesChanged
from contracts.schedule import ReleaseDue
from programs import Program
from services.common.bus import Bus, DependencyUnavailable
from services.tailor.directory import Recipient
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor
from services.tailor.store import Stage, TailorStore
from tests.conftest import TEMPLATES_DIR, make_event
from tests.outcomes import chunk_state
from tests.service.conftest import Clock, Recorder


def recipients(recorder: Recorder) -> int:
    """People addressed by the email commands on the bus (each command carries a chunk of them)."""
    return sum(len(cmd["recipients"]) for cmd in recorder[topics.EMAIL_DELIVERY_REQUESTED])




async def test_the_intranet_hears_a_go_live_and_a_phase_as_typed_facts_not_as_labels(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    golive = make_event("golive.milestone", sensitivity="public", payload={
        "area": "södra", "wave": "Våg 1", "planned_date": "2024-10-01", "status": "started",
        "title": "Södra inför Millennium", "what_changes": "Ny journal."})
    status = make_event("status.update", sensitivity="public", payload={
        "title": "Läget", "summary": "Enligt plan.", "phase": "Införande"})
    async with TestKafkaBroker(broker):
        for event in (golive, status):
            await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    items = {i["event_type"]: i for i in recorder[topics.INTRANET_DELIVERY_REQUESTED]}
    assert items["golive.milestone"]["golive"] == {"area": "södra", "wave": "Våg 1", "planned_date": "2024-10-01",
                                                   "state": "started"}
    assert items["golive.milestone"]["phase"] is None
    assert items["golive.milestone"]["facts"]["Status"] == "Införandet har startat"  # for people, not for code
    assert items["status.update"]["phase"] == "Införande" and items["status.update"]["golive"] is None


async def test_steering_decision_becomes_emails_cards_and_an_intranet_item(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    event = make_event(audiences=["politisk-styrgrupp", "programstyrgrupp"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    emails = recorder[topics.EMAIL_DELIVERY_REQUESTED]
    expected = {r.id for r in small_directory if r.role in ("politisk-styrgrupp", "programstyrgrupp")}
    assert {r["id"] for e in emails for r in e["recipients"]} == expected
    assert all(e["sender_address"] == "fvm@vgregion.se" for e in emails)
    [card] = recorder[topics.TEAMS_DELIVERY_REQUESTED]
    assert card["audience_id"] == "programstyrgrupp" and card["card"]["type"] == "AdaptiveCard"
    assert "webhook" not in json.dumps(card)  # the Teams service resolves the group's secret URL itself
    [item] = recorder[topics.INTRANET_DELIVERY_REQUESTED]
    assert item["title"] == "Ny tidplan"
    [planned] = recorder[topics.EVENT_PLANNED]
    assert planned["status"] == "planned"
    assert planned["plan"]["targeted"]["programstyrgrupp"] == {"email": 14, "teams": 1}


async def test_a_redelivered_event_is_not_planned_twice_but_its_plan_is_announced_again(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    event = make_event(audiences=["politisk-styrgrupp"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    assert recipients(recorder) == 9
    first, again = recorder[topics.EVENT_PLANNED]  # the plan is announced again, for a gateway that missed it
    assert first["plan"] == again["plan"] and again["status"] == "planned"


def release(event_id: Any, at: datetime) -> ReleaseDue:
    return ReleaseDue(program="fvm", event_id=event_id, due_at=at)


async def test_embargoed_event_is_held_until_the_scheduler_says_its_instant_has_come(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = tailor.clock
    assert isinstance(clock, Clock)
    event = make_event(audiences=["politisk-styrgrupp"], embargo_until=(clock.now + timedelta(hours=1)).isoformat())
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []
        assert recorder[topics.EVENT_PLANNED][0]["status"] == "embargoed"
        early = release(event.event_id, clock.now)  # too early by this clock: still held, and said so
        await bus.publish(topics.SCHEDULE_DUE, early, early.bus_key)
        assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []
        clock.now += timedelta(hours=1)
        for _ in range(2):  # the second is a repeat: nothing is planned twice
            due = release(event.event_id, clock.now)
            await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    assert recipients(recorder) == 9
    assert [p["status"] for p in recorder[topics.EVENT_PLANNED]] == ["embargoed", "embargoed", "planned", "planned"]


async def test_a_cancelled_held_event_is_never_released_not_even_after_a_restart_or_a_redelivery(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = tailor.clock
    assert isinstance(clock, Clock)
    event = make_event(audiences=["politisk-styrgrupp"], embargo_until=(clock.now + timedelta(hours=1)).isoformat())
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        cancelled = EventCancelled(event_id=event.event_id, program="fvm", cancelled_at=clock.now)
        await bus.publish(topics.EVENT_CANCELLED, cancelled, cancelled.bus_key)
        clock.now += timedelta(hours=2)
        due = release(event.event_id, clock.now)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))  # redelivered
        await tailor.recover()  # a restart announces only what is still held
    assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []
    assert [p["status"] for p in recorder[topics.EVENT_PLANNED]] == ["embargoed"]
    assert await tailor.store.status(event.event_id) is Stage.CANCELLED


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


async def test_event_naming_a_target_group_the_programme_lacks_is_dead_lettered(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    event = make_event(audiences=["politisk-styrgrupp", "no-such-group"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    [letter] = recorder[topics.DEAD_LETTER]
    assert "has no target groups ['no-such-group']" in letter["reason"]
    assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []


async def test_after_a_restart_the_tailor_emits_again_what_the_channels_have_not_confirmed(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, engine: AsyncEngine, fvm: Program) -> None:
    event = make_event(audiences=["politisk-styrgrupp", "programstyrgrupp"])
    restarted = Tailor({"fvm": fvm}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), TailorStore(engine), bus)
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        first = sorted(r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in c["recipients"])
        # The bus lost everything; a new tailor process starts over the same tables.
        recorder[topics.EMAIL_DELIVERY_REQUESTED].clear()
        recorder[topics.TEAMS_DELIVERY_REQUESTED].clear()
        assert await restarted.recover() == 1
        again = sorted(r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in c["recipients"])
        assert again == first and len(first) == 23
        assert [c["audience_id"] for c in recorder[topics.TEAMS_DELIVERY_REQUESTED]] == ["programstyrgrupp"]
        assert recorder[topics.EVENT_PLANNED][-1]["plan"]["targeted"]["programstyrgrupp"] == {"email": 14, "teams": 1}
        # The channels confirm every delivery (the intranet item, the card, each mail): nothing is left to emit.
        states = [chunk_state(event.event_id, c["audience_id"], len(c["recipients"]), sent=len(c["recipients"]),
                              chunk=c["recipients"][0]["id"]) for c in recorder[topics.EMAIL_DELIVERY_REQUESTED]]
        states += [chunk_state(event.event_id, "programstyrgrupp", 1, channel="teams",
                               unsent=((None, "failed", "permanent: 404", None),)),
                   chunk_state(event.event_id, "intranet", 1, sent=1, channel="intranet")]
        assert (await restarted.store.record_done(states[:-1])).delivered == 0
        assert (await restarted.store.record_done(states)).delivered == 1  # repeated chunks count once
        assert await restarted.recover() == 0
    assert await restarted.store.status(event.event_id) == "delivered"


async def test_a_newsletter_is_held_until_its_send_time_and_announced_as_held_after_a_restart(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    clock = tailor.clock
    assert isinstance(clock, Clock)
    send_at = clock.now + timedelta(days=2)
    letter = make_event("newsletter.issue", audiences=["politisk-styrgrupp"], payload={
        "title": "Nyhetsbrev mars", "sections": [{"heading": "Utbildning", "body": "Snart dags."}],
        "send_at": send_at.isoformat()})
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(letter.type), letter, str(letter.event_id))
        [held] = recorder[topics.EVENT_PLANNED]
        assert held["status"] == "embargoed" and datetime.fromisoformat(held["plan"]["embargoed_until"]) == send_at
        assert await tailor.recover() == 0  # after a start: announced again, for a scheduler that missed it
        assert [p["status"] for p in recorder[topics.EVENT_PLANNED]] == ["embargoed", "embargoed"]
        clock.now = send_at
        due = release(letter.event_id, send_at)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    assert recipients(recorder) == 9


async def test_a_newsletter_skips_who_opted_out_awareness_news_reaches_who_asked_and_must_know_news_reaches_all(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    members = sorted(r.id for r in small_directory if r.role == "politisk-styrgrupp")
    declined, asked = members[0], members[1]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    letter = make_event("newsletter.issue", audiences=["politisk-styrgrupp"], payload={
        "title": "Nyhetsbrev", "sections": [{"heading": "Rubrik", "body": "Text."}]})
    awareness = make_event(audiences=["politisk-styrgrupp"], importance="awareness")
    must = make_event(audiences=["politisk-styrgrupp"])
    async with TestKafkaBroker(broker):
        for change in (PreferencesChanged(program="fvm", person_id=declined, newsletters=False, changed_at=now),
                       PreferencesChanged(program="fvm", person_id=asked, awareness_email=True, changed_at=now)):
            await bus.publish(topics.PREFERENCES_CHANGED, change, change.bus_key)
        for event in (letter, awareness, must):
            await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    got: dict[str, set[str]] = {}
    for mail in recorder[topics.EMAIL_DELIVERY_REQUESTED]:
        got.setdefault(mail["event_id"], set()).update(r["id"] for r in mail["recipients"])
    assert got[str(letter.event_id)] == set(members) - {declined}
    assert got[str(awareness.event_id)] == {asked}
    assert got[str(must.event_id)] == set(members)  # must-know news cannot be opted out of
    plans = {p["plan"]["event_id"]: p["plan"] for p in recorder[topics.EVENT_PLANNED]}
    assert "1 opted out of newsletters (email)" in plans[str(letter.event_id)]["groups"][0]["reasons"]
    assert "1 asked for awareness news by email" in plans[str(awareness.event_id)]["groups"][0]["reasons"]


def amendment(kind: str, corrects: Any, **payload: Any) -> Any:
    body = {"corrects": str(corrects), "title": "Ny tidplan", "reason": "Fel datum.", **payload}
    if kind == "correction":
        body = {"what_changed": "Södra området inför hösten 2024.",
                "corrected": {"consequences": "Södra området inför hösten 2024."}, **body}
    return make_event(kind, payload=body, importance="awareness")


async def test_a_correction_reaches_whom_the_original_reached_by_its_channels_and_later_tells_the_corrected_text(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    original = make_event(audiences=["politisk-styrgrupp", "programstyrgrupp"])
    first = amendment("correction", original.event_id)
    second = amendment("correction", first.event_id, corrected={"title": "Ny tidplan (rättad)"})
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(original.type), original, str(original.event_id))
        for event in (first, second):
            await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    by_event: dict[str, list[dict[str, Any]]] = {}
    for cmd in recorder[topics.EMAIL_DELIVERY_REQUESTED]:
        by_event.setdefault(cmd["event_id"], []).append(cmd)
    reached = {r["id"] for c in by_event[str(original.event_id)] for r in c["recipients"]}
    for event in (first, second):  # each correction: the same people, following the original's deliveries
        commands = by_event[str(event.event_id)]
        assert {r["id"] for c in commands for r in c["recipients"]} == reached
        assert {c["follows"] for c in commands} == {str(original.event_id)}
        assert commands[0]["subject"] == f"Rättelse: {event.payload.title}"  # type: ignore[union-attr]
    cards = [c for c in recorder[topics.TEAMS_DELIVERY_REQUESTED] if c["follows"]]
    assert [c["audience_id"] for c in cards] == ["programstyrgrupp", "programstyrgrupp"]
    item = [i for i in recorder[topics.INTRANET_DELIVERY_REQUESTED] if i["follows"]][-1]
    assert item["amendment"]["kind"] == "correction" and item["title"] == "Ny tidplan (rättad)"
    assert "Södra området inför hösten 2024." in item["html_body"]  # the original's item, as it now reads
    record = await tailor.store.record_of(original.event_id)
    assert record is not None and record.event.payload.title == "Ny tidplan (rättad)"  # type: ignore[union-attr]
    plans = {p["plan"]["event_id"]: p["plan"] for p in recorder[topics.EVENT_PLANNED]}
    assert plans[str(first.event_id)]["targeted"] == plans[str(original.event_id)]["targeted"]


async def test_a_retraction_withdraws_the_original_from_digests_and_an_amendment_waits_for_its_original(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    original = make_event(audiences=["politisk-styrgrupp"])
    early = amendment("retraction", original.event_id)
    async with TestKafkaBroker(broker):
        with pytest.raises(DependencyUnavailable):  # the original is not planned here yet: it is waited for
            await tailor.on_event(early)
        await bus.publish(topics.event_topic(original.type), original, str(original.event_id))
        await bus.publish(topics.event_topic(early.type), early, str(early.event_id))
    [item] = [i for i in recorder[topics.INTRANET_DELIVERY_REQUESTED] if i["follows"]]
    assert item["amendment"]["kind"] == "retraction"
    assert {r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["follows"] for r in c["recipients"]} == {
        r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if not c["follows"] for r in c["recipients"]}
    published = original.published_at or original.occurred_at
    assert await tailor.store.published_between("fvm", published - timedelta(days=1),
                                                published + timedelta(days=1)) == []


async def test_a_correction_after_the_retention_forgot_whom_the_original_reached_still_amends_its_channels(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    original = make_event(audiences=["programstyrgrupp"])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(original.type), original, str(original.event_id))
        async with tailor.store.engine.begin() as conn:  # what the retention does to a delivered event
            await conn.execute(sqlalchemy.text("UPDATE tailor_events SET targets = NULL, status = 'delivered'"))
        correction = amendment("correction", original.event_id)
        await bus.publish(topics.event_topic(correction.type), correction, str(correction.event_id))
    assert not [c for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["follows"]]  # nobody known by name
    assert [c["audience_id"] for c in recorder[topics.TEAMS_DELIVERY_REQUESTED] if c["follows"]] == ["programstyrgrupp"]
    assert [i["amendment"]["kind"] for i in recorder[topics.INTRANET_DELIVERY_REQUESTED] if i["follows"]] == [
        "correction"]
