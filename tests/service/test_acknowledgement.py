"""Acknowledgement of must-know news (issue 21, item 2), one service at a time on the test broker: the link in
each person's mail and the page it opens (insights), and the reminders to exactly those who have not
acknowledged (tailor), driven by the clock."""

import re
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy import func, select

from contracts import topics
from contracts.deliveries import FollowUpSent
from contracts.feedback import Acknowledged
from contracts.schedule import ReleaseDue
from programs import Program, Role
from services.common.bus import Bus
from services.common.links import FEEDBACK_TTL, LinkSigner
from services.insights.figures import acknowledgements, by_group
from services.insights.store import InsightsStore
from services.insights.store import acknowledgements as insights_acknowledgements
from services.tailor.directory import Recipient
from services.tailor.reminders import reminder_id
from services.tailor.service import Tailor
from tests.conftest import make_event, sign_in_as
from tests.outcomes import chunk_state
from tests.service.conftest import Clock, Recorder
from tests.service.test_insights_service import GROUP, NOW, token

pytest_plugins = ["tests.service.test_insights_service"]  # its `client` and `store` fixtures

BUTTON = re.compile(r'<form method="post" action="([^"]+)">')


async def acknowledged_rows(store: InsightsStore) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(insights_acknowledgements))).scalar_one())


async def asking(broker: KafkaBroker, **envelope: Any) -> str:
    """Must-know news to the political steering group that asks to be acknowledged within two days."""
    event = make_event(audiences=[GROUP], acknowledge_by=(NOW + timedelta(days=2)).isoformat(), **envelope)
    await broker.publish(event.model_dump_json().encode(), topics.event_topic(event.type))
    return str(event.event_id)


async def test_a_persons_own_link_opens_a_page_whose_button_alone_acknowledges_once(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker, recorder: Recorder) -> None:
    seen = recorder
    event_id = await asking(broker)
    url = f"/ack/{token(event_id)}"
    for _ in range(3):  # a mail gateway fetching the link, or a reader who looks and leaves: nothing recorded
        page = await client.get(url)
        assert page.status_code == 200 and "Jag har tagit del av informationen" in page.text
        assert 'id="skicka"' not in page.text and "<script" not in page.text  # it never sends itself
    assert await acknowledged_rows(store) == 0 and seen[topics.ACKNOWLEDGED] == []
    action = BUTTON.findall((await client.get(url)).text)[0]
    for _ in range(2):
        thanks = await client.post(action.removeprefix("http://bk"))
        assert thanks.status_code == 200 and "Tack för din bekräftelse" in thanks.text
    assert await acknowledged_rows(store) == 1
    [said] = seen[topics.ACKNOWLEDGED]
    assert Acknowledged.model_validate(said).person_id == "p1" and said["respondent"].startswith("p:")
    rows = by_group(await store.counts([event_id]), event_id, {GROUP: "Politisk styrgrupp"})
    assert rows[0].counts["acknowledged"] == 1


async def test_a_forged_expired_foreign_or_unasked_acknowledgement_gets_a_page_and_records_nothing(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker) -> None:
    event_id = await asking(broker)
    plain = make_event(audiences=[GROUP])  # must-know news that asks for no acknowledgement
    await broker.publish(plain.model_dump_json().encode(), topics.event_topic(plain.type))
    old = LinkSigner(b"a-test-key-that-is-long-enough-for-hmac", Clock(NOW - FEEDBACK_TTL - timedelta(days=1)))
    cases = {
        f"/ack/{token(event_id)[:-3]}xyz": 400,  # altered
        f"/ack/{token(event_id, signer=LinkSigner(b'another-key-that-is-long-enough-x'))}": 400,  # forged
        f"/ack/{token(event_id, signer=old)}": 410,  # expired
        f"/ack/{token(event_id, program='fvis')}": 404,  # another programme's
        f"/ack/{token(str(plain.event_id))}": 404,  # nothing to acknowledge
        f"/ack/{token(str(uuid4()))}": 404,  # news never heard of
    }
    for url, status in cases.items():
        for response in (await client.get(url), await client.post(url)):
            assert response.status_code == status, url
            assert 'lang="sv"' in response.text and "Inget har sparats" in response.text
    assert await acknowledged_rows(store) == 0


async def test_a_groups_link_asks_a_signed_in_person_of_the_programme(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker, oidc_issuer: str) -> None:
    event_id = await asking(broker)
    url = f"/ack/{token(event_id, person=None)}"
    stranger = await client.get(url)
    assert stranger.status_code == 303 and "/auth/login" in stranger.headers["location"]
    assert (await client.post(url)).status_code == 303
    await sign_in_as(client, oidc_issuer, "anna", fvm={Role.MEMBER})
    assert (await client.post(url, data={"csrf": "0" * 32})).status_code == 403  # not her page's form
    page = await client.get(url)
    csrf = re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]
    assert (await client.post(url, data={"csrf": csrf})).status_code == 200
    assert await acknowledged_rows(store) == 1


def test_the_share_per_group_is_shown_only_where_five_or_more_were_asked() -> None:
    from collections import Counter
    from datetime import date

    from services.insights.figures import Row

    big = Row("a", "Stor", Counter({"targeted:email": 8, "acknowledged": 6}))
    small = Row("b", "Liten", Counter({"targeted:email": 3, "acknowledged": 2}))
    days = {"a": {date(2026, 12, 2): 2, date(2026, 12, 1): 4}, "b": {date(2026, 12, 1): 2}}
    shown = {a.key: a for a in acknowledgements([big, small], days)}
    assert shown["a"].share == 75.0
    assert shown["a"].over_time == ((date(2026, 12, 1), 50.0), (date(2026, 12, 2), 75.0))  # cumulative, by day
    assert shown["b"].share is None and shown["b"].over_time == ()  # who has not would show: nothing at all


# Reminders (the tailor) -----------------------------------------------------------------------------------------

def people_in(recorder: Recorder, event_id: UUID) -> set[str]:
    return {r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["event_id"] == str(event_id)
            for r in c["recipients"]}


async def test_a_reminder_reaches_exactly_those_who_did_not_acknowledge_once_and_again_after_a_restart(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    clock = tailor.clock
    assert isinstance(clock, Clock)
    deadline = clock.now + timedelta(hours=48)
    event = make_event(audiences=[GROUP], acknowledge_by=deadline.isoformat())
    members = {r.id for r in small_directory if r.role == GROUP}
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        assert people_in(recorder, event.event_id) == members
        [group] = recorder[topics.EVENT_PLANNED][0]["plan"]["groups"]
        assert any("asks to be acknowledged by" in r and "24 h, 2 h before" in r for r in group["reasons"])
        scheduled = [(s["at"], s["reason"]) for s in recorder[topics.DELIVERIES_SCHEDULED]]
        first, second = deadline - timedelta(hours=24), deadline - timedelta(hours=2)
        assert [(at, why) for at, why in scheduled] == [(first.isoformat().replace("+00:00", "Z"), "reminder"),
                                                         (second.isoformat().replace("+00:00", "Z"), "reminder")]
        done = sorted(members)[:3]
        for person in done:  # three acknowledged through their own links
            ack = Acknowledged(program="fvm", event_id=event.event_id, audience_id=GROUP, respondent=f"p:{person}xxxxxx",
                               person_id=person, acknowledged_at=clock.now)
            await bus.publish(topics.ACKNOWLEDGED, ack, ack.bus_key)

        clock.now = first - timedelta(minutes=1)  # too early: nothing
        due = ReleaseDue(program="fvm", event_id=event.event_id, due_at=clock.now)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        rid = reminder_id(event.event_id, first)
        assert people_in(recorder, rid) == set()

        clock.now = first
        for _ in range(2):  # said twice (the scheduler's repeat): one reminder
            due = ReleaseDue(program="fvm", event_id=event.event_id, due_at=clock.now)
            await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        reminders = [c for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["event_id"] == str(rid)]
        assert {r["id"] for c in reminders for r in c["recipients"]} == members - set(done)
        assert sum(len(c["recipients"]) for c in reminders) == len(members) - 3  # each once
        assert all(c["follows"] == str(event.event_id) and c["subject"].startswith("Påminnelse: ") for c in reminders)
        assert "Jag har tagit del av informationen" in "".join(p for p in reminders[0]["text_body"] if isinstance(p, str))
        [sent] = recorder[topics.FOLLOW_UP_SENT]
        assert FollowUpSent.model_validate(sent).targeted == {"email": len(members) - 3}
        [group] = recorder[topics.EVENT_PLANNED][-1]["plan"]["groups"]  # the status tells the share over time
        assert f"3 of {len(members)} acknowledged ({100 * 3 / len(members):.0f} %)" in group["reasons"][-1]

        before = len(reminders)
        await tailor.recover()  # a restart before the channels confirmed it: the same people again (ledgers dedupe)
        again = [c for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["event_id"] == str(rid)][before:]
        assert {r["id"] for c in again for r in c["recipients"]} == members - set(done)
        counted = await tailor.store.record_done([chunk_state(rid, GROUP, len(members) - 3, sent=len(members) - 3)])
        assert counted.refused == [] and counted.delivered == 1  # the reminder's deliveries are its own, confirmed


async def test_news_without_an_acknowledgement_or_to_no_one_by_email_schedules_no_reminder(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    async with TestKafkaBroker(broker):
        for event in (make_event(audiences=[GROUP]),
                      make_event("status.update", importance="awareness", audiences=[GROUP])):
            await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    assert recorder[topics.DELIVERIES_SCHEDULED] == []


def test_only_must_know_news_asks_for_an_acknowledgement_and_after_its_embargo() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="only must-know news"):
        make_event(importance="awareness", acknowledge_by=(NOW + timedelta(days=1)).isoformat())
    with pytest.raises(ValidationError, match="after the embargo"):
        make_event(embargo_until=(NOW + timedelta(days=2)).isoformat(),
                   acknowledge_by=(NOW + timedelta(days=1)).isoformat())


async def test_an_escalation_reaches_the_managers_after_n_hours_and_not_before_naming_only_the_message_and_staff(
        bus: Bus, broker: KafkaBroker, recorder: Recorder, engine: Any, fvm: Program,
        small_directory: list[Recipient]) -> None:
    from services.common.db import create_tables
    from services.tailor.escalation import Step
    from services.tailor.handlers import build_router
    from services.tailor.reminders import step_id
    from services.tailor.rendering import Renderer
    from services.tailor.store import TailorStore
    from services.tailor.store import metadata as tailor_metadata
    from tests.conftest import TEMPLATES_DIR

    program = fvm.model_copy(update={"acknowledgement": fvm.acknowledgement.model_copy(
        update={"escalate_after_hours": 24})})
    await create_tables(engine, tailor_metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    clock = Clock(NOW)
    tailor = Tailor({"fvm": program}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus, clock=clock)
    broker.include_router(build_router(tailor, bus))
    doctors = [r for r in small_directory if r.role == "medarbetare" and r.profession == "läkare"]
    by_id = {r.id: r for r in small_directory}
    event = make_event("design.decision", audiences=["lakare"], acknowledge_by=(NOW + timedelta(days=3)).isoformat())
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        reached = people_in(recorder, event.event_id)
        assert reached == {d.id for d in doctors}
        [group] = recorder[topics.EVENT_PLANNED][0]["plan"]["groups"]
        assert any("not acknowledged within 24 h: their managers are told" in r for r in group["reasons"])
        assert ("escalation", (NOW + timedelta(hours=24)).isoformat().replace("+00:00", "Z")) in {
            (s["reason"], s["at"]) for s in recorder[topics.DELIVERIES_SCHEDULED]}
        acknowledged = sorted(reached)[: len(reached) // 2]
        for person in acknowledged:
            ack = Acknowledged(program="fvm", event_id=event.event_id, audience_id="lakare",
                               respondent=f"p:{person}xxxxxx", person_id=person, acknowledged_at=NOW)
            await bus.publish(topics.ACKNOWLEDGED, ack, ack.bus_key)
        notice_id = step_id(event.event_id, Step(NOW + timedelta(hours=24), "managers", ("lakare",)))

        clock.now = NOW + timedelta(hours=23, minutes=59)  # not before
        due = ReleaseDue(program="fvm", event_id=event.event_id, due_at=clock.now)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        assert people_in(recorder, notice_id) == set()

        clock.now = NOW + timedelta(hours=24)
        for _ in range(2):  # said twice: one notice each
            due = ReleaseDue(program="fvm", event_id=event.event_id, due_at=clock.now)
            await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    waiting = set(reached) - set(acknowledged)
    managers = {by_id[i].manager for i in waiting}
    notices = [c for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["event_id"] == str(notice_id)]
    assert sorted(r["id"] for c in notices for r in c["recipients"]) == sorted(managers)  # each manager once
    for notice in notices:
        text = "".join(p for p in notice["text_body"] if isinstance(p, str))
        manager = notice["recipients"][0]["id"]
        theirs = {by_id[i].name for i in waiting if by_id[i].manager == manager}
        assert all(name in text for name in theirs) and "Beslut" in text  # the message and their staff, by name
        others = {by_id[i].name for i in set(reached) - theirs if by_id[i].manager != manager} - theirs
        assert not any(name in text for name in others)
        assert not any(by_id[i].email in text for i in waiting)  # nothing else about them
    plan = recorder[topics.EVENT_PLANNED][-1]["plan"]
    [group] = plan["groups"]
    assert any(f"{len(waiting)} had not acknowledged: a notice to their managers ({len(managers)} notices)" in r
               for r in group["reasons"])


# Managers first -----------------------------------------------------------------------------------------------

async def test_a_cascade_reaches_the_managers_24_hours_before_their_staff_who_hear_it_whether_or_not_confirmed(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    from services.tailor.briefings import briefing_id

    clock = tailor.clock
    assert isinstance(clock, Clock)
    start = clock.now
    doctors = [r for r in small_directory if r.role == "medarbetare" and r.profession == "läkare"]
    by_id = {r.id: r for r in small_directory}
    managers = {d.manager for d in doctors}
    event = make_event("design.decision", audiences=["lakare"], cascade={
        "talking_points": "Vad betyder beslutet för oss?\nVem frågar vi om vi är osäkra?", "managers_before_hours": 24})
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        assert people_in(recorder, event.event_id) == set()  # no staff yet
        assert recorder[topics.INTRANET_DELIVERY_REQUESTED] == []  # nor the intranet, where they would read it
        briefings = {a: briefing_id(event.event_id, a) for a in {by_id[m].area for m in managers}}
        briefed = set().union(*(people_in(recorder, b) for b in briefings.values()))
        assert briefed == managers  # each manager once
        for command in (c for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] if c["event_id"] in
                        {str(b) for b in briefings.values()}):
            text = "".join(p if isinstance(p, str) else "{" + p["slot"] + "}" for p in command["text_body"])
            assert command["subject"].startswith("Inför arbetsplatsträffen: ") and command["follows"] is None
            assert "Vem frågar vi om vi är osäkra?" in text and "/ack/{feedback}" in text  # their own confirm link
        sent = {(s["area"], s["kind"]) for s in recorder[topics.FOLLOW_UP_SENT]}
        assert sent == {(area, "briefing") for area in briefings}
        [group] = recorder[topics.EVENT_PLANNED][0]["plan"]["groups"]
        assert any(r.startswith(f"managers first: {len(managers)} managers get it now") for r in group["reasons"])
        staff_at = start + timedelta(hours=24)
        assert ("managers first", staff_at.isoformat().replace("+00:00", "Z")) in {
            (s["reason"], s["at"]) for s in recorder[topics.DELIVERIES_SCHEDULED]}

        clock.now = staff_at - timedelta(minutes=1)  # not before
        due = ReleaseDue(program="fvm", event_id=event.event_id, due_at=clock.now)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        assert people_in(recorder, event.event_id) == set()
        clock.now = staff_at  # no manager confirmed: the staff hear it on time all the same
        due = ReleaseDue(program="fvm", event_id=event.event_id, due_at=clock.now)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))  # redelivered: nothing twice
    assert people_in(recorder, event.event_id) == {d.id for d in doctors}
    assert len(recorder[topics.INTRANET_DELIVERY_REQUESTED]) == 1
    assert set().union(*(people_in(recorder, b) for b in briefings.values())) == managers


async def test_a_manager_confirms_taking_it_up_at_the_workplace_meeting_and_insights_counts_units_per_area(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker) -> None:
    from contracts.deliveries import FollowUpSent

    event_id = await asking(broker)
    south, north = uuid4(), uuid4()
    for briefing, area, managers in ((south, "södra", 3), (north, "norra", 2)):
        sent = FollowUpSent(follow_up_id=briefing, event_id=UUID(event_id), program="fvm", audience_id=GROUP,
                            kind="briefing", area=area, sent_at=NOW, targeted={"email": managers})
        await broker.publish(sent.model_dump_json().encode(), topics.FOLLOW_UP_SENT)
    url = f"/ack/{token(str(south))}"
    page = await client.get(url)
    assert page.status_code == 200 and "Taget upp på arbetsplatsträffen" in page.text
    thanks = await client.post(url)
    assert "på arbetsplatsträffen" in thanks.text
    assert await store.briefed(event_id) == [("norra", 2, 0), ("södra", 3, 1)]
