"""One digest per person and period (rule 8 across digests), through the tailor on a test broker: a person in
two groups with weekly digests gets one mail, in their highest-tier group's variant, with both groups'
sections."""

from datetime import UTC, datetime

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.preferences import PreferencesChanged
from contracts.schedule import DigestAsker, DigestDue
from programs import Program
from services.common.bus import Bus
from services.common.db import create_tables
from services.scheduler.periods import parse_period
from services.tailor.directory import Recipient
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor
from services.tailor.store import TailorStore
from services.tailor.store import metadata as tailor_metadata
from tests.conftest import TEMPLATES_DIR, make_event
from tests.service.conftest import Clock, Recorder
from tests.service.test_digests import published, shown

WEEK = parse_period("2026-W48")
IN_WEEK = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

BOTH = Recipient("dubbel-1", "Dana Dubbel", "dana@example.se", organisation="Närhälsan",
                 role="chef;programstyrgrupp", area="södra")
COMMITTEE_ONLY = Recipient("styr-1", "Sam Styr", "sam@example.se", role="programstyrgrupp")
MANAGER_ONLY = Recipient("chef-1", "Cia Chef", "cia@example.se", organisation="Närhälsan", role="chef", area="södra")


def narrowed(program: Program) -> Program:
    """FVM where the steering group follows steering decisions only and the managers go-lives only, both weekly."""
    follows = {"programstyrgrupp": ("steering.decision",), "chefer-hs": ("golive.milestone",)}
    return program.model_copy(update={"audiences": tuple(
        a.model_copy(update={"follows": follows[a.id]}) if a.id in follows else a for a in program.audiences)})


@pytest.fixture
async def tailor(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program) -> Tailor:
    await create_tables(engine, tailor_metadata)
    store = TailorStore(engine)
    await store.replace_directory([BOTH, COMMITTEE_ONLY, MANAGER_ONLY])
    return Tailor({"fvm": narrowed(fvm)}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus,
                  clock=Clock(datetime(2026, 11, 30, 6, 0, tzinfo=UTC)))


def due(audience: str, asked_by: DigestAsker = DigestAsker.SCHEDULE) -> DigestDue:
    return DigestDue(program="fvm", audience_id=audience, period=WEEK, due_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC),
                     asked_by=asked_by)


def mails(recorder: Recorder) -> dict[str, list[dict[str, object]]]:
    """Each person's digest mails: person id → the commands that carried one to them."""
    found: dict[str, list[dict[str, object]]] = {}
    for command in recorder[topics.EMAIL_DELIVERY_REQUESTED]:
        for person in command["recipients"]:
            found.setdefault(person["id"], []).append(command)
    return found


async def test_two_groups_weekly_digests_become_one_mail_per_person_with_every_section_they_follow(
        tailor: Tailor, broker: KafkaBroker, recorder: Recorder) -> None:
    await published(tailor, make_event(audiences=["programstyrgrupp"]), IN_WEEK)  # "Ny tidplan"
    await published(tailor, make_event("golive.milestone", sensitivity="public"), IN_WEEK)
    async with TestKafkaBroker(broker):
        await tailor.send_digest(due("programstyrgrupp"))
        await tailor.send_digest(due("chefer-hs"))
    got = mails(recorder)
    assert {person: len(commands) for person, commands in got.items()} == {"dubbel-1": 1, "styr-1": 1, "chef-1": 1}
    [both] = got["dubbel-1"]
    assert both["audience_id"] == "programstyrgrupp"  # the primary group's digest, in its detailed variant
    text = shown(both["text_body"])  # type: ignore[arg-type]
    assert "Ny tidplan" in text and "Södra inför Millennium" in text  # the sections of both groups
    committee = shown(got["styr-1"][0]["text_body"])  # type: ignore[arg-type]
    assert "Ny tidplan" in committee and "Södra inför Millennium" not in committee
    manager = shown(got["chef-1"][0]["text_body"])  # type: ignore[arg-type]
    assert "Södra inför Millennium" in manager and "Ny tidplan" not in manager
    sent = {s["audience_id"]: s["targeted"] for s in recorder[topics.DIGEST_SENT]}
    assert sent["programstyrgrupp"]["email"] == 2 and sent["chefer-hs"] == {"email": 1}


async def test_a_person_whose_cadences_differ_gets_each_and_a_digest_asked_for_by_hand_reaches_every_member(
        tailor: Tailor, broker: KafkaBroker, recorder: Recorder) -> None:
    async with TestKafkaBroker(broker):
        # The manager group's digest by hand: every member, whatever other group they are in.
        await tailor.send_digest(due("chefer-hs", DigestAsker.OPERATOR))
        assert set(mails(recorder)) == {"dubbel-1", "chef-1"}
        recorder[topics.EMAIL_DELIVERY_REQUESTED].clear()
        # Dana asks for monthly digests: the weekly ones leave her out (rule 9), the monthly one is one mail.
        change = PreferencesChanged(program="fvm", person_id="dubbel-1", digest="monthly", newsletters=True,
                                    awareness_email=False, changed_at=IN_WEEK)
        await tailor.store.record_preferences([change])
        for audience in ("programstyrgrupp", "chefer-hs"):
            await tailor.send_digest(due(audience))
        assert "dubbel-1" not in mails(recorder)
        recorder[topics.EMAIL_DELIVERY_REQUESTED].clear()
        for audience in ("programstyrgrupp", "chefer-hs"):
            await tailor.send_digest(DigestDue(program="fvm", audience_id=audience, period=parse_period("2026-11"),
                                               due_at=datetime(2026, 12, 1, 6, 0, tzinfo=UTC)))
        assert [c["audience_id"] for c in mails(recorder)["dubbel-1"]] == ["programstyrgrupp"]
