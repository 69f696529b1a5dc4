"""An event type is a plug-in: one registered here, in the test alone (a model, one registration and its two
templates), is parsed, planned, rendered, delivered by email and on the intranet, and told in a digest, by the
unchanged services."""

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.base import Contract
from contracts.deliveries import fill
from contracts.events import EVENT_TYPES, Envelope, EventType, Line200, Text, parse_event, registered_event_type
from contracts.schedule import DigestDue
from programs import load_programs
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.ended_sessions import EndedSessions
from services.common.ledger import Ledger
from services.email.handlers import build_router as build_email_router
from services.email.store import LEDGER as EMAIL_LEDGER
from services.email.store import metadata as email_metadata
from services.intranet.handlers import build_router as build_intranet_router
from services.intranet.store import ENDED_SESSIONS, IntranetStore
from services.intranet.store import LEDGER as INTRANET_LEDGER
from services.intranet.store import metadata as intranet_metadata
from services.scheduler.periods import parse_period
from services.tailor.directory import Recipient
from services.tailor.handlers import build_router as build_tailor_router
from services.tailor.rendering import Renderer
from services.tailor.samples import sample_events
from services.tailor.service import Tailor
from services.tailor.store import TailorStore
from services.tailor.store import metadata as tailor_metadata
from tests.conftest import PROGRAMS_DIR, TEMPLATES_DIR
from tests.service.conftest import Recorder
from tests.service.test_email_service import RecordingSmtp


class TrainingSession(Contract):
    title: Line200
    summary: Text
    starts_on: date


class TrainingScheduled(Envelope):
    type: Literal["training.session"]
    payload: TrainingSession


TRAINING = EventType(TrainingScheduled, "Utbildningstillfälle", digest_section=0, samples=(
    {"title": "Utbildning i Millennium", "summary": "Grundutbildningen för vårdpersonal.", "starts_on": "2026-05-04"},))


def templates_with_training(root: Path) -> Path:
    """The real templates and the two the new type adds."""
    templates = shutil.copytree(TEMPLATES_DIR, root / "templates")
    (templates / "parts" / "training_session.txt.j2").write_text("{{ p.summary }}\n\nStartar: {{ p.starts_on|sv_date }}\n")
    (templates / "parts" / "training_session.html.j2").write_text(
        '<p class="lead">{{ p.summary }}</p>\n<p><strong>Startar:</strong> {{ p.starts_on|sv_date }}</p>\n')
    return templates


async def test_an_event_type_registered_in_the_test_alone_is_planned_rendered_and_delivered(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, small_directory: list[Recipient], tmp_path: Path,
        recorder: Recorder) -> None:
    for metadata in (tailor_metadata, email_metadata, intranet_metadata):
        await create_tables(engine, metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    smtp = RecordingSmtp()
    intranet = IntranetStore(engine)
    with registered_event_type(TRAINING):
        programs = load_programs(PROGRAMS_DIR)  # loaded now: every group follows every registered type by default
        renderer = Renderer(templates_with_training(tmp_path), "http://budkavle.test")
        assert [e.payload.title for e in sample_events("fvm") if e.type == "training.session"] == [
            "Utbildning i Millennium"]
        tailor = Tailor(programs, renderer, store, bus, clock=lambda: datetime(2026, 4, 20, 9, 0, tzinfo=UTC))
        broker.include_router(build_tailor_router(tailor, bus))
        broker.include_router(build_email_router(smtp, Ledger(engine, EMAIL_LEDGER), bus))
        broker.include_router(build_intranet_router(intranet, Ledger(engine, INTRANET_LEDGER), bus,
                                                    EndedSessions(engine, ENDED_SESSIONS)))
        event = parse_event({"type": "training.session", "program": "fvm", "publisher": "Utbildning",
                             "importance": "must_know", "sensitivity": "internal",
                             "audiences": ["programstyrgrupp"], "published_at": "2026-04-20T09:00:00Z",
                             "payload": {"title": "Utbildning i Millennium startar",
                                         "summary": "Alla i programstyrgruppen går grundutbildningen.",
                                         "starts_on": "2026-05-04"}})
        async with TestKafkaBroker(broker):
            await bus.publish(topics.event_topic("training.session"), event, str(event.event_id))
            assert topics.event_topic("training.session") == "events.training.session.v1"
            digest = await tailor.send_digest(DigestDue(program="fvm", audience_id="programstyrgrupp",
                                                        period=parse_period("2026-W17"),
                                                        due_at=datetime(2026, 4, 27, 6, 0, tzinfo=UTC)))
    assert "training.session" not in EVENT_TYPES  # gone with the test

    [planned] = [p for p in recorder[topics.EVENT_PLANNED] if p["plan"]["event_id"] == str(event.event_id)]
    assert planned["status"] == "planned"
    assert planned["plan"]["targeted"]["programstyrgrupp"]["email"] == 14
    mails = [m for m in smtp.sent if m.command.event_id == event.event_id]
    assert len(mails) == 14 and len({m.recipient.id for m in mails}) == 14
    assert "Utbildning i Millennium startar" in mails[0].command.subject
    assert "Startar: 4 maj 2026" in fill(mails[0].command.text_body, {})
    assert "<strong>Startar:</strong> 4 maj 2026" in fill(mails[0].command.html_body, {})
    [item] = await intranet.latest("fvm", "training.session")
    assert item.title == "Utbildning i Millennium startar" and "4 maj 2026" in item.html_body
    assert item.facts["Typ"] == "Utbildningstillfälle"
    assert [(s.label, [e.title for e in s.entries]) for s in digest.sections][0] == (
        "Utbildningstillfälle", ["Utbildning i Millennium startar"])  # section 0: first in the digest
