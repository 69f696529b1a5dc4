from uuid import uuid4

from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.delivery import Ledger, PermanentDeliveryError
from services.email.handlers import build_router
from services.email.store import LEDGER, metadata
from tests.service.conftest import Recorder


class FakeSmtp:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[SendEmail] = []
        self.fail = fail

    async def send(self, cmd: SendEmail) -> int:
        if self.fail:
            raise self.fail
        self.sent.append(cmd)
        return 1


def command(recipient: str = "p1") -> SendEmail:
    return SendEmail(event_id=uuid4(), program="fvm", audience_id="programstyrgrupp", recipient_id=recipient,
                     to_address=f"{recipient}@example.se", to_name="Anna", sender_name="FVM",
                     sender_address="fvm@vgregion.se", subject="Beslut", text_body="t", html_body="<p>h</p>")


async def _setup(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, smtp: FakeSmtp) -> None:
    await create_tables(engine, metadata)
    broker.include_router(build_router(smtp.send, Ledger(engine, LEDGER), bus))


async def test_email_command_is_sent_and_its_outcome_announced(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = FakeSmtp()
    await _setup(broker, bus, engine, smtp)
    cmd = command()
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.recipient_id)
    assert [s.recipient_id for s in smtp.sent] == ["p1"]
    [outcome] = recorder[topics.DELIVERY_OUTCOMES]
    assert (outcome["status"], outcome["channel"], outcome["recipient_id"]) == ("sent", "email", "p1")


async def test_redelivered_email_command_sends_nothing_twice(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = FakeSmtp()
    await _setup(broker, bus, engine, smtp)
    cmd = command()
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.recipient_id)
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.recipient_id)
    assert len(smtp.sent) == 1
    assert [o["status"] for o in recorder[topics.DELIVERY_OUTCOMES]] == ["sent", "sent"]


async def test_smtp_refusal_is_recorded_with_its_reason(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = FakeSmtp(fail=PermanentDeliveryError("SMTP 550 mailbox unavailable"))
    await _setup(broker, bus, engine, smtp)
    cmd = command()
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.recipient_id)
    [outcome] = recorder[topics.DELIVERY_OUTCOMES]
    assert outcome["status"] == "failed" and outcome["reason"] == "permanent: SMTP 550 mailbox unavailable"
    entry = await Ledger(engine, LEDGER).lookup(cmd.delivery_key)
    assert entry is not None and entry.status == "failed"


async def test_invalid_email_command_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = FakeSmtp()
    await _setup(broker, bus, engine, smtp)
    good = command("p2")
    async with TestKafkaBroker(broker):
        await bus.publish_json(topics.EMAIL_DELIVERY_REQUESTED, b'{"event_id": "nope"}', "k")
        # (TestKafkaBroker's call recorder decodes JSON bodies itself, so send garbage as octet-stream)
        await broker.publish(b"\xff not json", topics.EMAIL_DELIVERY_REQUESTED,
                             headers={"content-type": "application/octet-stream"})
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, good, good.recipient_id)
    letters = recorder[topics.DEAD_LETTER]
    assert len(letters) == 2
    assert letters[0]["consumer"] == "email" and "event_id" in letters[0]["reason"]
    assert letters[0]["topic"] == topics.EMAIL_DELIVERY_REQUESTED
    assert [s.recipient_id for s in smtp.sent] == ["p2"]
