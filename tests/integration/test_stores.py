"""Every service's store on both SQLite and the local PostgreSQL."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import (
    DeliveryPlan,
    EmailRecipient,
    EventPlanned,
    PublishIntranetItem,
    SendEmail,
)
from contracts.lifecycle import PlanStatus
from services.common.db import create_tables
from services.common.ledger import Ledger, LedgerEntry
from services.email.sender import Mail
from services.email.store import LEDGER
from services.email.store import metadata as email_md
from services.gateway.store import DuplicateEvent, GatewayStore, OutboxRow
from services.gateway.store import events as gateway_events
from services.gateway.store import metadata as gateway_md
from services.intranet.store import IntranetStore
from services.intranet.store import metadata as intranet_md
from services.tailor.directory import Recipient
from services.tailor.store import Stage, TailorStore
from services.tailor.store import metadata as tailor_md
from tests.conftest import make_event
from tests.outcomes import chunk_state


async def test_ledger_records_once_and_finds_it_again(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, email_md)
    ledger = Ledger(store_engine, LEDGER)
    cmd = SendEmail(event_id=uuid4(), program="fvm", audience_id="a", sender_name="FVM", sender_address="fvm@vgregion.se",
                    subject="s", text_body="t", html_body="h",
                    recipients=(EmailRecipient(id="p1", address="a@example.se", name="A"),))
    [mail] = Mail.each_of(cmd)
    assert await ledger.lookup(mail.key) is None
    await ledger.record_many([(mail, LedgerEntry("failed", "temporary: SMTP 451", 3))])
    await ledger.record_many([(mail, LedgerEntry("sent", None, 1))])
    assert await ledger.lookup(mail.key) == LedgerEntry("sent", None, 1)
    assert mail.key == f"{cmd.event_id}:p1:email"


async def test_gateway_store_keeps_event_and_outbox_together(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, gateway_md)
    store = GatewayStore(store_engine)
    event = make_event()
    await store.accept(event, "events.steering.decision.v1", "t0:key-1", "hash")
    with pytest.raises(DuplicateEvent):
        await store.accept(make_event(), "events.steering.decision.v1", "t0:key-1", "hash")
    assert len(await store.pending_outbox(10)) == 1  # the refused duplicate left no outbox row
    found = await store.by_idempotency("t0:key-1")
    assert found is not None and found.event_id == str(event.event_id)
    published: list[OutboxRow] = []

    async def publish(rows: list[OutboxRow]) -> None:
        published.extend(rows)

    assert await store.relay_pending(10, publish) == 1
    assert [r.key for r in published] == [str(event.event_id)]
    assert await store.pending_outbox(10) == []


async def test_gateway_counts_outcomes_once_per_delivery(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, gateway_md)
    store = GatewayStore(store_engine)
    event_id = uuid4()
    now = datetime.now(UTC)
    async with store_engine.begin() as conn:  # an event the gateway accepted
        await conn.execute(insert(gateway_events).values(event_id=str(event_id), program="fvm", type="status.update",
                                                         body="{}", request_hash="h", accepted_at=now))
    waiting = chunk_state(event_id, "a", 1, unsent=(("p1", "deferred", "temporary: 451", now),), at=now)
    sent = chunk_state(event_id, "a", 1, sent=1, at=now + timedelta(seconds=1))
    for state in (waiting, sent, sent, waiting):  # a repeat counts once, and a late older state changes nothing
        assert await store.record_outcomes([state]) == []
    await store.record_outcomes([chunk_state(event_id, "a", 1, sent=1, channel="teams", at=now)])
    assert await store.outcome_counts(event_id) == {("a", "email", "sent"): 1, ("a", "teams", "sent"): 1}
    plan = DeliveryPlan(event_id=event_id, program="fvm", groups=(), refused=())
    await store.record_plan(EventPlanned(plan=plan, status="planned", planned_at=now))
    await store.record_plan(EventPlanned(plan=plan, status="embargoed", planned_at=now))
    assert (await store.plan_of(event_id))[0] is PlanStatus.PLANNED  # type: ignore[index]


async def test_tailor_directory_and_held_events(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, tailor_md)
    store = TailorStore(store_engine)
    people = [Recipient(f"p{i}", "N", f"p{i}@example.se", area="södra", options=frozenset({1, 3})) for i in range(12_000)]
    assert await store.replace_directory(people) == 12_000
    assert await store.replace_directory(people[:3]) == 3
    assert await store.full_directory() == people[:3]
    # In memory, what planning needs: ids and selector attributes, no names or addresses; those are read per
    # mail's chunk when it is composed.
    assert list(await store.load_index()) == [Recipient(p.id, "", "", area="södra", options=frozenset({1, 3}))
                                               for p in people[:3]]
    assert await store.contacts(["p2", "p0", "gone"]) == {"p0": ("N", "p0@example.se"), "p2": ("N", "p2@example.se")}
    now = datetime.now(UTC)
    held = make_event(embargo_until=(now + timedelta(minutes=10)).isoformat())
    await store.record(held, Stage.HELD)
    assert await store.held(held.event_id) == (Stage.HELD, held)
    await store.record(held, Stage.PLANNED)
    assert await store.status(held.event_id) is Stage.PLANNED
    assert await store.held(uuid4()) is None


async def test_intranet_items_are_listed_newest_first(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, intranet_md)
    store = IntranetStore(store_engine)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(3):
        event = make_event()
        await store.save(PublishIntranetItem(
            event_id=event.event_id, program="fvm", audience_id="intranet", event_type=event.type,
            title=f"Nyhet {n}", summary="s",
            html_body="<p>x</p>", importance="awareness", sensitivity="internal", occurred_at=base,
            published_at=base + timedelta(hours=n), audiences=()))
    items = await store.latest("fvm")
    assert [i.title for i in items] == ["Nyhet 2", "Nyhet 1", "Nyhet 0"]
    assert items[0].published_at.tzinfo is not None
    assert await store.get(items[0].event_id) == items[0]


async def test_tailor_keeps_the_directory_in_memory_until_an_import_replaces_it(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, tailor_md)
    tailor, importer = TailorStore(store_engine), TailorStore(store_engine)  # as two processes
    await importer.replace_directory([Recipient("a", "A", "a@example.se")])
    first = await tailor.load_index()
    assert await tailor.load_index() is first  # served from memory
    await importer.replace_directory([Recipient("b", "B", "b@example.se")])
    assert [r.id for r in await tailor.load_index()] == ["b"]


async def test_after_a_restart_the_gateway_relays_again_the_events_never_planned(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, gateway_md)
    store = GatewayStore(store_engine)
    planned, lost = make_event(), make_event()
    for event in (planned, lost):
        await store.accept(event, "events.steering.decision.v1", None, "hash")
    async def publish(_rows: list[OutboxRow]) -> None:
        pass

    await store.relay_pending(10, publish)
    await store.record_plan(EventPlanned(plan=DeliveryPlan(event_id=planned.event_id, program="fvm", groups=(),
                                                           refused=()), status="planned", planned_at=datetime.now(UTC)))
    assert await store.requeue_unplanned() == 1
    assert [key for _, _, key, _ in await store.pending_outbox(10)] == [str(lost.event_id)]
    assert await store.requeue_unplanned() == 0  # what is waiting in the outbox already is left as it is


async def test_two_gateways_relaying_at_once_never_publish_one_row_twice(store_engine: AsyncEngine) -> None:
    import asyncio

    await create_tables(store_engine, gateway_md)
    store = GatewayStore(store_engine)
    for _ in range(40):
        await store.accept(make_event(), "events.steering.decision.v1", None, "hash")
    published: list[str] = []

    async def publish(rows: list[OutboxRow]) -> None:
        await asyncio.sleep(0.01)  # Kafka takes a moment to acknowledge; the other gateway runs meanwhile
        published.extend(r.key for r in rows)

    async def gateway() -> None:
        while await store.relay_pending(5, publish):
            pass

    await asyncio.gather(gateway(), gateway())
    assert len(published) == 40 and len(set(published)) == 40


async def test_tailor_store_finds_a_programmes_events_that_went_out_in_a_period(store_engine: AsyncEngine) -> None:
    await create_tables(store_engine, tailor_md)
    store = TailorStore(store_engine)
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)

    def at(day: datetime, **envelope: object) -> object:
        return make_event(**envelope).model_copy(update={"published_at": day})

    before, first, second, after = (at(datetime(2026, 10, 31, 23, tzinfo=UTC)), at(datetime(2026, 11, 20, tzinfo=UTC)),
                                    at(datetime(2026, 11, 2, tzinfo=UTC)), at(end))
    held, other = at(datetime(2026, 11, 5, tzinfo=UTC)), at(datetime(2026, 11, 5, tzinfo=UTC), program="fvis")
    for event in (before, first, second, after, other):
        await store.record(event, Stage.PLANNED)  # type: ignore[arg-type]
    await store.record(held, Stage.HELD)  # type: ignore[arg-type]
    assert await store.published_between("fvm", start, end) == [second, first]
