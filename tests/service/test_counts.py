"""Counts where counts are enough: the tailor, the gateway and insights keep a fan-out's outcomes as counts per
delivery command, and those counts equal the channels' ledgers per group and channel, through a fan-out with
refusals, a recovery that emits every command again, and the retry of what was deferred."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.delivery import PermanentDeliveryError, TransientDeliveryError, deliver_many
from services.common.ended_sessions import EndedSessions
from services.common.ledger import Ledger
from services.common.retry import Retrier, RetryPolicy
from services.email.handlers import build_router as email_router
from services.email.sender import Mail
from services.email.store import LEDGER as EMAIL_LEDGER
from services.email.store import PARKED as EMAIL_PARKED
from services.email.store import metadata as email_md
from services.gateway.dead_letters import DeadLetterStore
from services.gateway.handlers import build_router as gateway_router
from services.gateway.store import ENDED_SESSIONS as GATEWAY_ENDED_SESSIONS
from services.gateway.store import GatewayStore
from services.gateway.store import events as gateway_events
from services.gateway.store import metadata as gateway_md
from services.gateway.store import outcomes as gateway_unsent
from services.insights.handlers import build_router as insights_router
from services.insights.store import InsightsStore
from services.insights.store import metadata as insights_md
from services.intranet.handlers import build_router as intranet_router
from services.intranet.store import ENDED_SESSIONS as INTRANET_ENDED_SESSIONS
from services.intranet.store import LEDGER as INTRANET_LEDGER
from services.intranet.store import IntranetStore
from services.intranet.store import metadata as intranet_md
from services.tailor.directory import Recipient
from services.tailor.service import Tailor
from services.tailor.store import Stage
from tests.conftest import make_event
from tests.outcomes import chunk_state
from tests.service.conftest import Clock, Recorder
from tests.service.test_email_service import RecordingSmtp

GROUP = "politisk-styrgrupp"  # email and the intranet


async def ledger_counts(engine: AsyncEngine, event_id: UUID) -> dict[tuple[str, str, str], int]:
    """(group, channel, status) → deliveries, from the channels' own ledgers."""
    found: dict[tuple[str, str, str], int] = {}
    async with engine.connect() as conn:
        for channel, table in (("email", EMAIL_LEDGER), ("intranet", INTRANET_LEDGER)):
            rows = (await conn.execute(select(table.c.audience_id, table.c.status, func.count())
                                       .where(table.c.event_id == str(event_id))
                                       .group_by(table.c.audience_id, table.c.status))).all()
            found.update({(audience, channel, status): n for audience, status, n in rows})
    return found


async def test_the_counts_equal_the_ledgers_after_a_fan_out_a_recovery_and_a_retry_and_delivered_waits_for_all(
        tailor: Tailor, broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder,
        small_directory: list[Recipient]) -> None:
    for md in (email_md, intranet_md, gateway_md, insights_md):
        await create_tables(engine, md)
    clock = Clock(datetime.now(UTC))
    policy = RetryPolicy(clock=clock)
    email_ledger = Ledger(engine, EMAIL_LEDGER, EMAIL_PARKED)
    smtp = RecordingSmtp()
    broker.include_router(email_router(smtp, email_ledger, bus, policy))
    broker.include_router(intranet_router(IntranetStore(engine), Ledger(engine, INTRANET_LEDGER), bus,
                                          EndedSessions(engine, INTRANET_ENDED_SESSIONS)))
    gateway, insights = GatewayStore(engine), InsightsStore(engine)
    broker.include_router(gateway_router(gateway, DeadLetterStore(engine), bus,
                                         EndedSessions(engine, GATEWAY_ENDED_SESSIONS)))
    broker.include_router(insights_router(insights, bus))
    retrier = Retrier(email_ledger, policy, SendEmail.model_validate_json,
                      lambda cmd, ids: [m for m in Mail.each_of(cmd) if m.recipient_id in ids],
                      lambda mails: deliver_many(mails, smtp, email_ledger, bus, policy, retrying=True))
    event = make_event(audiences=[GROUP])
    async with engine.begin() as conn:  # the gateway accepted it
        await conn.execute(insert(gateway_events).values(
            event_id=str(event.event_id), program="fvm", type=event.type, body=event.model_dump_json(),
            request_hash="h", accepted_at=event.occurred_at))

    async with TestKafkaBroker(broker):
        # Two people of the group: one greylisted (deferred), one refused for good.
        people = sorted(r.id for r in small_directory if r.role == GROUP)
        greylisted, refused = people[0], people[1]
        smtp.refuse = {greylisted: TransientDeliveryError("SMTP 451 greylisted"),
                       refused: PermanentDeliveryError("SMTP 550 no such user")}
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        planned = [r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in c["recipients"]]
        assert greylisted in planned and refused in planned

        first = await ledger_counts(engine, event.event_id)
        assert first == {(GROUP, "email", "sent"): len(planned) - 2, (GROUP, "email", "deferred"): 1,
                         (GROUP, "email", "failed"): 1, ("intranet", "intranet", "sent"): 1}
        assert await gateway.outcome_counts(event.event_id) == first
        assert await tailor.store.status(event.event_id) == Stage.PLANNED  # one delivery has not ended
        unsent = await named(engine, event.event_id)
        assert unsent == {(greylisted, "deferred", "temporary: SMTP 451 greylisted"),
                          (refused, "failed", "permanent: SMTP 550 no such user")}

        # As after a crash: the tailor emits every command again; the email ledger sends nothing twice, and
        # every chunk's state is announced again: nothing counts twice.
        assert await tailor.recover() == 1
        assert len(smtp.sent) == len(planned) - 2
        assert await gateway.outcome_counts(event.event_id) == await ledger_counts(engine, event.event_id) == first
        assert await insights_reach(insights, str(event.event_id)) == {"sent:email": len(planned) - 2,
                                                                       "failed:email": 1, "sent:intranet": 1}

        # The greylisting ends: the retrier sends the deferred mail and announces its chunk's new state.
        del smtp.refuse[greylisted]
        clock.now += timedelta(hours=1)
        assert await retrier.retry_due() == 1

    final = await ledger_counts(engine, event.event_id)
    assert final == {(GROUP, "email", "sent"): len(planned) - 1, (GROUP, "email", "failed"): 1,
                     ("intranet", "intranet", "sent"): 1}
    assert await gateway.outcome_counts(event.event_id) == final
    assert await tailor.store.status(event.event_id) == Stage.DELIVERED  # every targeted delivery ended
    assert await named(engine, event.event_id) == {(refused, "failed", "permanent: SMTP 550 no such user")}
    assert await insights_reach(insights, str(event.event_id)) == {"sent:email": len(planned) - 1,
                                                                   "failed:email": 1, "sent:intranet": 1}
    sent = Counter(m.recipient.id for m in smtp.sent)
    assert sent == Counter(p for p in planned if p != refused)  # each once, the refused one never


async def named(engine: AsyncEngine, event_id: UUID) -> set[tuple[str, str, str]]:
    """Whom the gateway names as not sent, and why."""
    t = gateway_unsent
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.c.recipient_key, t.c.status, t.c.reason)
                                   .where(t.c.event_id == str(event_id)))).all()
    return {(r[0], r[1], r[2]) for r in rows}


async def insights_reach(store: InsightsStore, event_id: str) -> dict[str, int]:
    """Insights' delivery measures of an event, over its groups."""
    total: Counter[str] = Counter()
    for (eid, _group), measures in (await store.counts([event_id])).items():
        if eid == event_id:
            total.update({m: n for m, n in measures.items() if m.split(":")[0] in ("sent", "failed")})
    return dict(total)


async def test_outcomes_of_an_event_never_planned_or_beyond_its_plan_are_dead_lettered_and_count_nothing(
        tailor: Tailor, broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    await create_tables(engine, insights_md)
    insights = InsightsStore(engine)
    broker.include_router(insights_router(insights, bus))
    event = make_event(audiences=[GROUP])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        targeted = recorder[topics.EVENT_PLANNED][-1]["plan"]["targeted"][GROUP]["email"]
        never = chunk_state(uuid4(), GROUP, 1, sent=1)
        beyond = chunk_state(event.event_id, GROUP, targeted + 1, sent=targeted + 1)
        for state in (never, beyond):
            await bus.publish(topics.DELIVERY_OUTCOMES, state, state.bus_key)
    reasons = {d["consumer"]: [] for d in recorder[topics.DEAD_LETTER]}
    for d in recorder[topics.DEAD_LETTER]:
        reasons[d["consumer"]].append(d["reason"])
    assert reasons["tailor"] == [
        f"outcomes for {never.event_id}, which was never planned: nothing counted",
        f"a email chunk of {targeted + 1} deliveries to {GROUP}, but the plan targeted {targeted}: nothing counted"]
    assert reasons["insights"] == reasons["tailor"][1:]  # insights cannot tell never from not yet: it keeps it
    assert await tailor.store.status(event.event_id) == Stage.PLANNED
    assert "sent:email" not in (await insights.counts([str(event.event_id)])).get((str(event.event_id), GROUP), {})


async def test_people_who_left_the_directory_before_their_mail_was_composed_are_not_waited_for(
        tailor: Tailor, broker: KafkaBroker, bus: Bus, recorder: Recorder, small_directory: list[Recipient]) -> None:
    event = make_event(audiences=[GROUP])
    async with TestKafkaBroker(broker):
        await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
        planned = [r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in c["recipients"]]
        leaver = planned[0]
        await tailor.store.replace_directory([r for r in small_directory if r.id != leaver])
        recorder[topics.EMAIL_DELIVERY_REQUESTED].clear()  # the bus lost the commands; the tailor starts again
        assert await tailor.recover() == 1
        again = [r["id"] for c in recorder[topics.EMAIL_DELIVERY_REQUESTED] for r in c["recipients"]]
        assert sorted(again) == sorted(p for p in planned if p != leaver)
        states = [chunk_state(event.event_id, c["audience_id"], len(c["recipients"]), sent=len(c["recipients"]),
                              chunk=c["recipients"][0]["id"]) for c in recorder[topics.EMAIL_DELIVERY_REQUESTED]]
        states.append(chunk_state(event.event_id, "intranet", 1, sent=1, channel="intranet"))
        assert (await tailor.store.record_done(states)).delivered == 1  # everyone still in the directory
        assert await tailor.recover() == 0  # and a second start changes nothing
    assert await tailor.store.status(event.event_id) == Stage.DELIVERED
