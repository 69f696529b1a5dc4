"""The tailor's digests, driven by `schedule.due` on a test broker with an injected clock."""

from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from contracts import topics
from contracts.events import Event
from contracts.preferences import PreferencesChanged
from contracts.schedule import DigestDue, digest_id
from services.common.bus import Bus
from services.scheduler.periods import parse_period
from services.tailor.directory import Recipient
from services.tailor.service import Tailor
from tests.conftest import make_event
from tests.outcomes import chunk_state
from tests.service.conftest import Recorder

NOVEMBER = parse_period("2026-11")




def shown(body: list[str | dict[str, str]]) -> str:
    """An email command's body as JSON, with each slot for a person's own link shown as {slot}."""
    return "".join(p if isinstance(p, str) else "{" + p["slot"] + "}" for p in body)


def digest_due(audience: str, period: str = "2026-11", program: str = "fvm") -> DigestDue:
    return DigestDue(program=program, audience_id=audience, period=parse_period(period),
                     due_at=datetime(2026, 12, 1, 6, 0, tzinfo=UTC))


async def published(tailor: Tailor, event: Event, at: datetime) -> None:
    """An event as the tailor records it once it went out, published at `at`."""
    await tailor.store.record(event.model_copy(update={"published_at": at}), "planned")


async def test_a_quiet_month_still_gives_each_member_a_digest_with_the_status_and_the_timeline(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    earlier = make_event(audiences=["politisk-styrgrupp"])
    await published(tailor, earlier, datetime(2026, 9, 14, 10, 0, tzinfo=UTC))
    due = digest_due("politisk-styrgrupp")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    [mail] = recorder[topics.EMAIL_DELIVERY_REQUESTED]
    members = {r.id for r in small_directory if r.role == "politisk-styrgrupp"}
    assert {r["id"] for r in mail["recipients"]} == members
    assert mail["event_id"] == str(digest_id("fvm", "politisk-styrgrupp", "2026-11"))
    assert mail["subject"] == "FVM (Framtidens vårdinformationsmiljö): Lägessummering november 2026"
    text = shown(mail["text_body"])
    assert "Inget nytt för dig sedan 14 september 2026." in text
    assert "Fas: Införande" in text and "- Västra området (västra): hösten 2026 – Planerad" in text
    [item] = recorder[topics.INTRANET_DELIVERY_REQUESTED]  # the month's summary on the intranet, once
    assert item["title"] == "Lägessummering november 2026" and item["event_type"] == "digest"
    assert item["event_id"] == str(digest_id("fvm", "intranet", "2026-11"))


async def test_a_digest_asks_its_readers_the_follow_up_questions_and_says_what_it_targeted(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    due = digest_due("politisk-styrgrupp")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    [mail] = recorder[topics.EMAIL_DELIVERY_REQUESTED]
    assert "/feedback/{feedback}?q=understood&a=ja" in shown(mail["text_body"])  # each reader's own link
    assert "/preferences/{preferences}" in shown(mail["text_body"])
    [item] = recorder[topics.INTRANET_DELIVERY_REQUESTED]
    assert "Förstod du informationen?" in item["html_body"] and "/feedback/" in item["html_body"]
    sent = {s["audience_id"]: s for s in recorder[topics.DIGEST_SENT]}
    members = sum(r.role == "politisk-styrgrupp" for r in small_directory)
    assert sent["politisk-styrgrupp"]["targeted"] == {"email": members}
    assert sent["politisk-styrgrupp"]["title"] == "Lägessummering november 2026 – Politisk styrgrupp"
    assert sent["politisk-styrgrupp"]["digest_id"] == str(digest_id("fvm", "politisk-styrgrupp", "2026-11"))
    assert sent["intranet"]["targeted"] == {"intranet": 1}


async def test_a_digest_tells_the_periods_news_by_type_and_never_what_the_group_may_not_see(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    in_month = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)
    decision = make_event(audiences=["politisk-styrgrupp"])
    secret = make_event(sensitivity="confidential", payload={
        "committee": "Programstyrgrupp", "title": "Förhandlingsläge", "decision_text": "Hemligt.",
        "rationale": "-", "consequences": "-"})
    status = make_event("status.update", payload={"title": "Läget i november", "summary": "Allt går enligt plan.",
                                                  "phase": "Förberedelser inför västra"})
    moved = make_event("golive.milestone", payload={"area": "västra", "planned_date": "2027-03-01",
                                                    "status": "rescheduled", "title": "Västra flyttas",
                                                    "what_changes": "Införandet sker våren 2027."})
    late = make_event(audiences=["politisk-styrgrupp"], payload={
        "committee": "Regionstyrelsen", "title": "December", "decision_text": "-", "rationale": "-",
        "consequences": "-"})
    for event in (decision, secret, status, moved):
        await published(tailor, event, in_month)
    await published(tailor, late, datetime(2026, 12, 2, tzinfo=UTC))  # after the period: not in it
    due = digest_due("facklig-referensgrupp")  # external to nothing, but not cleared for confidential matters
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    mails = recorder[topics.EMAIL_DELIVERY_REQUESTED]
    assert mails, "the group's members get the digest"
    html = shown(mails[0]["html_body"])
    assert "Styrgruppsbeslut" in html and "Ny tidplan" in html and "Förhandlingsläge" not in html
    assert "December" not in html
    assert "Fas: Förberedelser inför västra" in html and "Läget i november" in html
    assert "<strong>Västra området</strong> (västra): 1 mars 2027 – Ny tidpunkt" in html
    [card] = recorder[topics.TEAMS_DELIVERY_REQUESTED]
    assert card["audience_id"] == "facklig-referensgrupp" and "Ny tidplan" in str(card["card"])


async def test_the_same_period_twice_gives_the_same_digest_id_and_a_weekly_group_no_intranet_item(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    due = digest_due("programstyrgrupp", "2026-W47")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    ids = {m["event_id"] for m in recorder[topics.EMAIL_DELIVERY_REQUESTED]}
    assert ids == {str(digest_id("fvm", "programstyrgrupp", "2026-W47"))}  # the ledger sends it once
    assert recorder[topics.EMAIL_DELIVERY_REQUESTED][0]["subject"].endswith("Veckosammanfattning vecka 47 2026")
    assert recorder[topics.INTRANET_DELIVERY_REQUESTED] == []


@pytest.mark.parametrize(("program", "audience", "reason"), [
    ("okand", "x", "programme 'okand' has no configuration"),
    ("fvm", "okand-grupp", "no target group 'okand-grupp'")])
async def test_a_digest_for_an_unknown_programme_or_group_is_dead_lettered_with_the_reason(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, program: str, audience: str,
        reason: str) -> None:
    due = digest_due(audience, program=program)
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    [letter] = recorder[topics.DEAD_LETTER]
    assert reason in letter["reason"]
    assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []


def test_a_period_ends_after_it_starts() -> None:
    assert NOVEMBER.end - NOVEMBER.start == timedelta(days=30)


async def test_each_member_gets_the_digest_at_the_cadence_they_chose_or_none_and_the_next_send_honours_a_change(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder, small_directory: list[Recipient]) -> None:
    members = sorted(r.id for r in small_directory if r.role == "politisk-styrgrupp")  # a monthly group
    weekly, declined = members[0], members[1]
    now = datetime(2026, 11, 30, tzinfo=UTC)
    async with TestKafkaBroker(broker):
        for person, digest in ((weekly, "weekly"), (declined, "none")):
            change = PreferencesChanged(program="fvm", person_id=person, digest=digest, changed_at=now)
            await bus.publish(topics.PREFERENCES_CHANGED, change, change.bus_key)
        for due in (digest_due("politisk-styrgrupp"), digest_due("politisk-styrgrupp", "2026-W48")):
            await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    by_period: dict[str, set[str]] = {}
    for mail in recorder[topics.EMAIL_DELIVERY_REQUESTED]:
        label = "month" if "november" in mail["subject"] else "week"
        by_period.setdefault(label, set()).update(r["id"] for r in mail["recipients"])
    assert by_period == {"month": set(members) - {weekly, declined}, "week": {weekly}}
    assert [i["title"] for i in recorder[topics.INTRANET_DELIVERY_REQUESTED]] == ["Lägessummering november 2026"]


async def test_a_digest_not_yet_confirmed_is_sent_again_after_a_start_and_no_more_once_every_delivery_ended(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    due = digest_due("facklig-referensgrupp")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
        first = [(m["event_id"], r["id"]) for m in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in m["recipients"]]
        [card] = recorder[topics.TEAMS_DELIVERY_REQUESTED]
        await tailor.recover()  # as after a crash: the bus may have lost the commands
        again = [(m["event_id"], r["id"]) for m in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in m["recipients"]]
        assert again == first * 2  # the same digest, the same people: the email ledger sends nothing twice
        now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
        states = [chunk_state(card["event_id"], "facklig-referensgrupp", len(first), sent=len(first), at=now),
                  chunk_state(card["event_id"], "facklig-referensgrupp", 1, sent=1, channel="teams", at=now)]
        assert (await tailor.store.record_done(states)).delivered == 1
        recorder[topics.EMAIL_DELIVERY_REQUESTED].clear()
        await tailor.recover()
    assert recorder[topics.EMAIL_DELIVERY_REQUESTED] == []


async def test_a_later_digest_tells_the_corrected_version_and_nothing_retracted(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, recorder: Recorder) -> None:
    in_month = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)
    wrong = make_event("status.update", payload={"title": "Läget i november", "summary": "Utbildningen börjar i mars."})
    withdrawn = make_event("status.update", payload={"title": "Felaktigt utskick", "summary": "Skickat av misstag."})
    for event in (wrong, withdrawn):
        await published(tailor, event, in_month)
    await tailor.store.amend(wrong.event_id, body=wrong.model_copy(update={
        "published_at": in_month, "payload": wrong.payload.model_copy(update={"summary": "Utbildningen börjar i april."})}))
    await tailor.store.amend(withdrawn.event_id, retract=True)
    due = digest_due("politisk-styrgrupp")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    html = shown(recorder[topics.EMAIL_DELIVERY_REQUESTED][0]["html_body"])
    assert "Läget i november" in html and "april" in html and "mars" not in html
    assert "Felaktigt utskick" not in html
