"""Teams and intranet services through TestKafkaBroker."""

from uuid import uuid4

import httpx
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import PublishIntranetItem, SendTeamsCard
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.delivery import Ledger
from services.intranet.handlers import build_router as intranet_router
from services.intranet.store import LEDGER as INTRANET_LEDGER
from services.intranet.store import IntranetStore
from services.intranet.store import metadata as intranet_md
from services.teams.handlers import build_router as teams_router
from services.teams.store import LEDGER as TEAMS_LEDGER
from services.teams.store import metadata as teams_md
from services.teams.webhook import WorkflowsWebhook
from tests.conftest import make_event
from tests.service.conftest import Recorder


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


async def _teams(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, receiver: RecordingReceiver) -> None:
    await create_tables(engine, teams_md)
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    sender = WorkflowsWebhook(client, WEBHOOKS, ("logic.azure.com",), backoff_seconds=0)
    broker.include_router(teams_router(sender, Ledger(engine, TEAMS_LEDGER), bus))


async def test_teams_card_is_posted_once_to_the_groups_own_webhook_in_the_workflows_envelope(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    receiver = RecordingReceiver(429, 202)
    await _teams(broker, bus, engine, receiver)
    cmd = card_command()
    async with TestKafkaBroker(broker):
        await bus.publish(topics.TEAMS_DELIVERY_REQUESTED, cmd, cmd.audience_id)
        await bus.publish(topics.TEAMS_DELIVERY_REQUESTED, cmd, cmd.audience_id)
    assert len(receiver.requests) == 2  # one 429, then accepted; the redelivery sent nothing
    assert str(receiver.requests[-1].url) == WEBHOOKS[("fvm", "programstyrgrupp")]
    body = receiver.requests[-1].read()
    assert b'"contentType":"application/vnd.microsoft.card.adaptive"' in body.replace(b" ", b"")
    assert [o["status"] for o in recorder[topics.DELIVERY_OUTCOMES]] == ["sent", "sent"]
    assert recorder[topics.DELIVERY_OUTCOMES][0]["attempts"] == 2


async def test_refusal_forbidden_host_and_missing_webhook_are_recorded_with_reasons(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    receiver = RecordingReceiver(400)
    await _teams(broker, bus, engine, receiver)
    async with TestKafkaBroker(broker):
        for audience_id in ("programstyrgrupp", "objektledning", "vgr-it"):
            await bus.publish(topics.TEAMS_DELIVERY_REQUESTED, card_command(audience_id), audience_id)
    reasons = [(o["status"], o["reason"]) for o in recorder[topics.DELIVERY_OUTCOMES]]
    assert reasons[0][0] == "failed" and reasons[0][1].startswith("permanent: HTTP 400")
    assert reasons[1] == ("failed", "permanent: webhook refused: host 'evil.example.com' is not on the allow-list")
    assert reasons[2][0] == "failed" and "no Teams webhook configured for fvm/vgr-it" in reasons[2][1]
    assert len(receiver.requests) == 1


async def test_a_redelivered_intranet_item_is_stored_once_and_announced_each_time(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    await create_tables(engine, intranet_md)
    store = IntranetStore(engine)
    broker.include_router(intranet_router(store, Ledger(engine, INTRANET_LEDGER), bus))
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
    assert [(o["channel"], o["audience_id"], o["status"]) for o in recorder[topics.DELIVERY_OUTCOMES]] == [
        ("intranet", "intranet", "sent")] * 2
