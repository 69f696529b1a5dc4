"""`BUDKAVLE_RETENTION_DAYS`: every service that keeps rows about a person forgets them once they are older
than the retention, and keeps what its figures need (the insights service's own test shows its part)."""

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import DeadLetter, DeliveryPlan, EmailRecipient, SendEmail
from services.common.db import create_tables
from services.common.delivery import Delivery
from services.common.ledger import Ledger, LedgerEntry
from services.common.settings import CommonSettings
from services.email.store import LEDGER, PARKED
from services.email.store import metadata as email_metadata
from services.gateway.dead_letters import DeadLetterStore, dead_letters
from services.gateway.store import GatewayStore, outcomes
from services.gateway.store import events as gateway_events
from services.gateway.store import metadata as gateway_metadata
from services.preferences.store import PreferencesStore, used_forms
from services.preferences.store import metadata as preferences_metadata
from services.tailor.store import Stage, TailorStore, done
from services.tailor.store import metadata as tailor_metadata
from tests.conftest import make_event
from tests.outcomes import chunk_state


async def rows(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


def test_the_retention_is_a_year_unless_configured_and_refuses_nonsense() -> None:
    assert CommonSettings().retention_days == 365
    assert CommonSettings(BUDKAVLE_RETENTION_DAYS="30").retention_days == 30  # type: ignore[call-arg]
    for bad in ("0", "-5", "ett år"):
        with pytest.raises(ValidationError, match="retention_days|BUDKAVLE_RETENTION_DAYS"):
            CommonSettings(BUDKAVLE_RETENTION_DAYS=bad)  # type: ignore[call-arg]


async def test_a_delivery_ledger_forgets_ended_deliveries_and_keeps_a_deferred_ones_command(engine: AsyncEngine) -> None:
    await create_tables(engine, email_metadata)
    ledger = Ledger(engine, LEDGER, PARKED)
    people = tuple(EmailRecipient(id=f"p{i}", address=f"p{i}@example.se", name="P") for i in range(3))
    cmd = SendEmail(event_id=uuid4(), program="fvm", audience_id="g", sender_name="FVM",
                    sender_address="fvm@example.se", subject="Ämne", text_body="t", html_body="h", recipients=people)
    later = datetime.now(UTC) + timedelta(hours=1)
    await ledger.record_many([
        (Delivery(cmd, "p0"), LedgerEntry("sent", None, 1)),
        (Delivery(cmd, "p1"), LedgerEntry("failed", "550 no such user", 1)),
        (Delivery(cmd, "p2"), LedgerEntry("deferred", "451 try later", 1, later, datetime.now(UTC))),
    ])
    assert await ledger.purge(datetime.now(UTC) - timedelta(days=365)) == 0  # nothing that old
    assert await ledger.purge(datetime.now(UTC) + timedelta(seconds=1)) == 2  # as if a year had passed
    assert set(await ledger.lookup_many([Delivery(cmd, f"p{i}").key for i in range(3)])) == {Delivery(cmd, "p2").key}
    assert await rows(engine, PARKED) == 1  # the deferred delivery still needs its command


async def test_the_gateway_forgets_who_failed_and_an_events_status_keeps_its_figures(engine: AsyncEngine) -> None:
    await create_tables(engine, gateway_metadata)
    store, letters = GatewayStore(engine), DeadLetterStore(engine)
    event_id = uuid4()
    now = datetime.now(UTC)
    async with engine.begin() as conn:  # an event the gateway accepted
        await conn.execute(insert(gateway_events).values(event_id=str(event_id), program="fvm", type="status.update",
                                                         body="{}", request_hash="h", accepted_at=now))
    await store.record_outcomes([chunk_state(event_id, "g", 4, sent=2, at=now - timedelta(days=400), unsent=(
        ("p2", "failed", "permanent: 550", None), ("p3", "deferred", "temporary: 451", now)))])
    await store.record_outcomes([chunk_state(event_id, "g", 1, sent=1, chunk="c2", at=now)])
    await letters.keep([(DeadLetter(topic="t", consumer="c", reason="r", payload='{"to": "p@example.se"}',
                                    at=now - timedelta(days=400)), "k")])
    before = await store.outcome_counts(event_id)
    assert before == {("g", "email", "sent"): 3, ("g", "email", "failed"): 1, ("g", "email", "deferred"): 1}
    cutoff = now - timedelta(days=365)
    assert await store.forget_failed(cutoff) + await letters.purge(cutoff) == 1 + 1  # who failed is forgotten
    assert await rows(engine, outcomes) == 1  # the deferred one still under way
    assert await rows(engine, dead_letters) == 0
    assert await store.outcome_counts(event_id) == before
    await store.forget_failed(cutoff)  # again: nothing changes
    assert await store.outcome_counts(event_id) == before


async def test_the_tailor_forgets_whom_a_delivered_event_reached_but_not_a_planned_one(engine: AsyncEngine) -> None:
    await create_tables(engine, tailor_metadata)
    store = TailorStore(engine)
    delivered, planned = make_event(), make_event()
    plan = DeliveryPlan(event_id=delivered.event_id, program="fvm", groups=(), refused=(), targeted={"g": {"email": 2}})
    targets = {"email": {"g": ["p1", "p2"]}}
    await store.record(delivered, Stage.PLANNED, plan, targets)
    await store.record(planned, Stage.PLANNED, plan.model_copy(update={"event_id": planned.event_id}), targets)
    await store.record_done([chunk_state(delivered.event_id, "g", 2, sent=2)])
    await store.record_done([chunk_state(planned.event_id, "g", 2, sent=1)])
    assert await store.purge(datetime.now(UTC) - timedelta(days=365)) == 0
    assert await store.purge(datetime.now(UTC) + timedelta(seconds=1)) == 1  # the delivered event's chunk
    assert await rows(engine, done) == 1  # the planned event still needs to know who is done
    pending = await store.unconfirmed()
    assert [p.event.event_id for p in pending] == [planned.event_id] and pending[0].targets == targets
    assert await store.stored_plan(delivered.event_id) is not None  # the event and its plan stay
    assert json.loads(await store.stored_plan(delivered.event_id) or "{}")["targeted"] == {"g": {"email": 2}}


async def test_the_preference_centre_forgets_used_form_nonces(engine: AsyncEngine) -> None:
    await create_tables(engine, preferences_metadata)
    store = PreferencesStore(engine)
    assert await store.use_form("nonce-1")
    assert await store.purge(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await rows(engine, used_forms) == 0
