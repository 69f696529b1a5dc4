"""Teams and intranet services through TestKafkaBroker."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import PublishIntranetItem, SendTeamsCard
from contracts.people import SessionEnded
from programs import Program, Role
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.delivery import Delivery, deliver_many
from services.common.ended_sessions import EndedSessions
from services.common.ledger import Ledger
from services.common.retry import Retrier, RetryPolicy
from services.common.sessions import Sessions
from services.common.signin import People
from services.intranet.handlers import build_router as intranet_router
from services.intranet.pages import build_http as intranet_http
from services.intranet.pages import intranet_environment
from services.intranet.store import ENDED_SESSIONS as INTRANET_ENDED_SESSIONS
from services.intranet.store import LEDGER as INTRANET_LEDGER
from services.intranet.store import IntranetStore
from services.intranet.store import metadata as intranet_md
from services.teams.handlers import build_router as teams_router
from services.teams.limits import WebhookLimiter
from services.teams.store import LEDGER as TEAMS_LEDGER
from services.teams.store import PARKED as TEAMS_PARKED
from services.teams.store import POSTS as TEAMS_POSTS
from services.teams.store import metadata as teams_md
from services.teams.webhook import WorkflowsWebhook
from tests.conftest import TEMPLATES_DIR, make_event, sign_in_as, signin_router
from tests.service.conftest import Clock, Recorder


class RecordingReceiver:
    """An httpx mock transport that answers like a Workflows webhook and keeps what it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else 202
        return httpx.Response(status, headers={"retry-after": "0"}, text="slow down" if status == 429 else "")


#: The Teams service's own settings: each group's secret webhook (never on the bus).
WEBHOOKS = {("fvm", "programstyrgrupp"): "https://prod.westeurope.logic.azure.com/workflows/abc",
            ("fvm", "objektledning"): "https://evil.example.com/hook"}


def card_command(audience_id: str = "programstyrgrupp") -> SendTeamsCard:
    return SendTeamsCard(event_id=uuid4(), program="fvm", audience_id=audience_id,
                         card={"type": "AdaptiveCard", "version": "1.5", "body": []})



async def _teams(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, receiver: RecordingReceiver,
                 clock: Clock | None = None) -> Retrier[SendTeamsCard]:
    """The Teams service's parts over a mock webhook; returns its retrier (driven by `clock`)."""
    await create_tables(engine, teams_md)
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    sender = WorkflowsWebhook(client, WEBHOOKS, WebhookLimiter(engine, TEAMS_POSTS), ("logic.azure.com",),
                              backoff_seconds=0)
    ledger = Ledger(engine, TEAMS_LEDGER, TEAMS_PARKED)
    policy = RetryPolicy(clock=clock or Clock())
    broker.include_router(teams_router(sender, ledger, bus, policy))
    return Retrier(ledger, policy, SendTeamsCard.model_validate_json, lambda cmd, _: [Delivery(cmd, None)],
                   lambda cards: deliver_many(cards, sender, ledger, bus, policy, retrying=True))


async def test_a_throttled_card_is_deferred_then_posted_once_to_the_groups_own_webhook(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    receiver = RecordingReceiver(429, 202)
    clock = Clock()
    retrier = await _teams(broker, bus, engine, receiver, clock)
    cmd = card_command()
    async with TestKafkaBroker(broker):
        await bus.publish(topics.TEAMS_DELIVERY_REQUESTED, cmd, cmd.audience_id)
        await bus.publish(topics.TEAMS_DELIVERY_REQUESTED, cmd, cmd.audience_id)  # a redelivery: sends nothing
        assert len(receiver.requests) == 1
        [first, again] = recorder[topics.DELIVERY_OUTCOMES]
        assert first["deferred"] == again["deferred"] == 1
        assert [{**o, "at": None} for o in first["unsent"]] == [{**o, "at": None} for o in again["unsent"]]
        [waiting] = first["unsent"]
        assert waiting["status"] == "deferred" and waiting["reason"].startswith("temporary: HTTP 429")
        assert datetime.fromisoformat(waiting["next_attempt_at"]) == clock.now + timedelta(minutes=1)
        assert await retrier.retry_due() == 0  # not yet
        clock.now += timedelta(minutes=1)
        assert await retrier.retry_due() == 1
        assert await retrier.retry_due() == 0
    assert len(receiver.requests) == 2
    assert str(receiver.requests[-1].url) == WEBHOOKS[("fvm", "programstyrgrupp")]
    body = receiver.requests[-1].read()
    assert b'"contentType":"application/vnd.microsoft.card.adaptive"' in body.replace(b" ", b"")
    sent = recorder[topics.DELIVERY_OUTCOMES][-1]
    assert (sent["sent"], sent["deferred"], sent["unsent"]) == (1, 0, [])
    entry = await Ledger(engine, TEAMS_LEDGER).lookup(cmd.delivery_key())
    assert entry is not None and (entry.status, entry.attempts, entry.next_attempt_at) == ("sent", 2, None)


async def test_refusal_forbidden_host_and_missing_webhook_are_recorded_with_reasons(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    receiver = RecordingReceiver(400)
    await _teams(broker, bus, engine, receiver)
    async with TestKafkaBroker(broker):
        for audience_id in ("programstyrgrupp", "objektledning", "vgr-it"):
            await bus.publish(topics.TEAMS_DELIVERY_REQUESTED, card_command(audience_id), audience_id)
    reasons = [(o["status"], o["reason"]) for state in recorder[topics.DELIVERY_OUTCOMES] for o in state["unsent"]]
    assert reasons[0][0] == "failed" and reasons[0][1].startswith("permanent: HTTP 400")
    assert reasons[1] == ("failed", "permanent: webhook refused: host 'evil.example.com' is not on the allow-list")
    assert reasons[2][0] == "failed" and "no Teams webhook configured for fvm/vgr-it" in reasons[2][1]
    assert len(receiver.requests) == 1


async def test_a_redelivered_intranet_item_is_stored_once_and_announced_each_time(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    await create_tables(engine, intranet_md)
    store = IntranetStore(engine)
    broker.include_router(intranet_router(store, Ledger(engine, INTRANET_LEDGER), bus,
                                          EndedSessions(engine, INTRANET_ENDED_SESSIONS)))
    event = make_event()
    cmd = PublishIntranetItem(event_id=event.event_id, program="fvm", audience_id="intranet", event_type=event.type,
                              title="Ny tidplan",
                              summary="Sammanfattning", html_body="<p>Text</p>", importance="must_know",
                              sensitivity="internal", occurred_at=event.occurred_at,
                              published_at=event.occurred_at, audiences=("programstyrgrupp",))
    async with TestKafkaBroker(broker):
        await bus.publish(topics.INTRANET_DELIVERY_REQUESTED, cmd, str(cmd.event_id))
        await bus.publish(topics.INTRANET_DELIVERY_REQUESTED, cmd, str(cmd.event_id))
    items = await store.latest()
    assert [i.title for i in items] == ["Ny tidplan"]
    assert [(o["channel"], o["audience_id"], o["sent"]) for o in recorder[topics.DELIVERY_OUTCOMES]] == [
        ("intranet", "intranet", 1)] * 2


async def test_a_session_signed_out_elsewhere_opens_no_internal_item_here_once_announced(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program, oidc_issuer: str) -> None:
    await create_tables(engine, intranet_md)
    store, ended = IntranetStore(engine), EndedSessions(engine, INTRANET_ENDED_SESSIONS)
    broker.include_router(intranet_router(store, Ledger(engine, INTRANET_LEDGER), bus, ended))
    event = make_event()
    await store.save(PublishIntranetItem(
        event_id=event.event_id, program="fvm", audience_id="intranet", event_type=event.type, title="Intern nyhet",
        summary="Sammanfattning", html_body="<p>Text</p>", importance="must_know", sensitivity="internal",
        occurred_at=event.occurred_at, published_at=event.occurred_at, audiences=()))
    sessions = Sessions(b"a-session-key-that-is-long-enough-too", "http://bk", timedelta(minutes=30),
                        timedelta(hours=8), ended=ended.ended)
    env = intranet_environment(TEMPLATES_DIR, {"fvm": fvm}, "http://bk")
    people = People(sessions, env, "http://bk")
    app = FastAPI()
    app.include_router(signin_router(oidc_issuer, people, {"fvm": fvm}))  # the sign-in, as insights serves it
    app.include_router(intranet_http(store, {"fvm": fvm}, env, people))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bk") as client:
        sid = await sign_in_as(client, oidc_issuer, "anna", fvm={Role.MEMBER})
        assert (await client.get(f"/intranet/items/{event.event_id}")).status_code == 200
        now = datetime.now(UTC)
        async with TestKafkaBroker(broker):  # the sign-out, as the insights service announces it
            await bus.publish(topics.SESSION_ENDED, SessionEnded(sid=sid, ended_at=now,
                                                                 expires_at=now + timedelta(hours=8)), sid)
        after = await client.get(f"/intranet/items/{event.event_id}")
    assert after.status_code == 303 and "/auth/login" in after.headers["location"]
