"""The email service through TestKafkaBroker, with a recording fake in place of the SMTP server."""

import asyncio
from uuid import uuid4

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import EmailRecipient, SendEmail
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.delivery import DeliveryError, PermanentDeliveryError, deliver_many
from services.common.handover import HandedOver, watching
from services.common.ledger import Ledger
from services.common.subscriptions import _HandOverWhenDone
from services.email.handlers import build_router
from services.email.sender import Mail
from services.email.store import LEDGER, PARKED, metadata
from tests.service.conftest import Recorder
from tests.waiting import wait_for


class RecordingSmtp:
    """An EmailSender that keeps what it sent; `refuse` maps a recipient id to the error it gets."""

    def __init__(self, refuse: dict[str, DeliveryError] | None = None) -> None:
        self.sent: list[Mail] = []
        self.refuse = refuse or {}

    async def send(self, mail: Mail, /) -> int:
        if mail.recipient.id in self.refuse:
            raise self.refuse[mail.recipient.id]
        self.sent.append(mail)
        return 1

    async def close(self) -> None:
        pass


def command(*recipients: str) -> SendEmail:
    return SendEmail(event_id=uuid4(), program="fvm", audience_id="programstyrgrupp", sender_name="FVM",
                     sender_address="fvm@vgregion.se", subject="Beslut", text_body="t", html_body="<p>h</p>",
                     recipients=tuple(EmailRecipient(id=r, address=f"{r}@example.se", name="Anna")
                                      for r in recipients or ("p1",)))


async def _setup(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, smtp: RecordingSmtp) -> None:
    await create_tables(engine, metadata)
    broker.include_router(build_router(smtp, Ledger(engine, LEDGER, PARKED), bus))


async def test_one_command_reaches_each_of_its_recipients_and_each_outcome_is_announced(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = RecordingSmtp()
    await _setup(broker, bus, engine, smtp)
    cmd = command("p1", "p2", "p3")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)
    assert [(m.recipient.id, str(m.recipient.address)) for m in smtp.sent] == [
        ("p1", "p1@example.se"), ("p2", "p2@example.se"), ("p3", "p3@example.se")]
    assert {m.command.subject for m in smtp.sent} == {"Beslut"}
    [state] = recorder[topics.DELIVERY_OUTCOMES]  # the chunk's state, counted: sent people are not named
    assert (state["channel"], state["chunk"], state["size"]) == ("email", cmd.bus_key, 3)
    assert (state["sent"], state["failed"], state["deferred"], state["unsent"]) == (3, 0, 0, [])


async def test_a_redelivered_chunk_sends_nothing_to_those_already_served(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = RecordingSmtp()
    await _setup(broker, bus, engine, smtp)
    cmd = command("p1", "p2")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)
    assert sorted(m.recipient.id for m in smtp.sent) == ["p1", "p2"]
    # The redelivered chunk announces the same whole state again: a reader keeps one per chunk.
    assert [(o["chunk"], o["sent"]) for o in recorder[topics.DELIVERY_OUTCOMES]] == [(cmd.bus_key, 2)] * 2


async def test_a_refused_recipient_is_recorded_with_its_reason_and_the_others_are_sent(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = RecordingSmtp(refuse={"p2": PermanentDeliveryError("SMTP 550 mailbox unavailable")})
    await _setup(broker, bus, engine, smtp)
    cmd = command("p1", "p2")
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)
    [state] = recorder[topics.DELIVERY_OUTCOMES]
    assert (state["sent"], state["failed"], state["deferred"]) == (1, 1, 0)
    assert [(o["recipient_id"], o["status"], o["reason"]) for o in state["unsent"]] == [
        ("p2", "failed", "permanent: SMTP 550 mailbox unavailable")]
    entry = await Ledger(engine, LEDGER).lookup(cmd.delivery_key("p2"))
    assert entry is not None and entry.status == "failed"


async def test_invalid_email_command_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = RecordingSmtp()
    await _setup(broker, bus, engine, smtp)
    good = command("p2")
    async with TestKafkaBroker(broker):
        await bus.publish_json(topics.EMAIL_DELIVERY_REQUESTED, b'{"event_id": "nope"}', "k")
        # (TestKafkaBroker's call recorder decodes JSON bodies itself, so send garbage as octet-stream)
        await broker.publish(b"\xff not json", topics.EMAIL_DELIVERY_REQUESTED,
                             headers={"content-type": "application/octet-stream"})
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, good, good.bus_key)
    letters = recorder[topics.DEAD_LETTER]
    assert len(letters) == 2
    assert letters[0]["consumer"] == "email" and "event_id" in letters[0]["reason"]
    assert letters[0]["topic"] == topics.EMAIL_DELIVERY_REQUESTED
    assert [m.recipient.id for m in smtp.sent] == ["p2"]


async def test_a_correction_goes_only_to_whom_the_ledger_says_got_the_original_and_waits_for_the_rest(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    smtp = RecordingSmtp(refuse={"p2": PermanentDeliveryError("550 no such user")})
    await _setup(broker, bus, engine, smtp)
    original = command("p1", "p2")  # p3 is not reached yet: their part of the original is still on its way
    correction = command("p1", "p2", "p3").model_copy(update={"follows": original.event_id, "subject": "Rättelse"})
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, original, original.bus_key)
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, correction, correction.bus_key)
        later = original.model_copy(update={"recipients": (EmailRecipient(id="p3", address="p3@example.se",
                                                                          name="Anna"),)})
        await bus.publish(topics.EMAIL_DELIVERY_REQUESTED, later, later.bus_key)
        ledger = Ledger(engine, LEDGER, PARKED)
        waiting = await ledger.lookup(correction.delivery_key("p3"))
        assert waiting is not None and waiting.status == "deferred"
        assert "has not reached them yet" in (waiting.reason or "")
        # What the retrier does when p3's turn comes.
        await deliver_many([Mail(correction, "p3", correction.recipients[2])], smtp, ledger, bus, retrying=True)
    sent = [(m.command.subject, m.recipient.id) for m in smtp.sent]
    assert sent == [("Beslut", "p1"), ("Rättelse", "p1"), ("Beslut", "p3"), ("Rättelse", "p3")]
    *_, last = [o for o in recorder[topics.DELIVERY_OUTCOMES] if o["event_id"] == str(correction.event_id)]
    assert (last["size"], last["sent"], last["failed"], last["deferred"]) == (3, 2, 1, 0)  # the retrier's: whole
    assert [(o["recipient_id"], o["status"], o["reason"]) for o in last["unsent"]] == [
        ("p2", "failed", "permanent: the original never reached them; there is nothing to amend")]


class HandOverAfter(RecordingSmtp):
    """Asks for a hand-over (as a rebalance does) once it has sent `count` mails."""

    def __init__(self, count: int, asked: asyncio.Event) -> None:
        super().__init__()
        self.count, self.asked = count, asked

    async def send(self, mail: Mail, /) -> int:
        sent = await super().send(mail)
        if len(self.sent) >= self.count:
            self.asked.set()
        return sent


async def test_a_chunk_stops_when_its_partition_is_handed_over_and_the_next_owner_sends_the_rest_once(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, recorder: Recorder) -> None:
    await create_tables(engine, metadata)
    ledger = Ledger(engine, LEDGER, PARKED)
    cmd = command(*(f"p{n}" for n in range(40)))
    asked = asyncio.Event()
    first = HandOverAfter(5, asked)
    async with TestKafkaBroker(broker):
        with watching(asked), pytest.raises(HandedOver):
            await deliver_many(Mail.each_of(cmd), first, ledger, bus, concurrency=4)
        # What was under way when the hand-over was asked ends and is written; nothing new starts.
        assert 5 <= len(first.sent) < 5 + 4
        recorded = await ledger.lookup_many([cmd.delivery_key(m.recipient.id) for m in first.sent])
        assert len(recorded) == len(first.sent)
        following = RecordingSmtp()  # the partition's next owner reads the chunk again
        await deliver_many(Mail.each_of(cmd), following, ledger, bus, concurrency=4)
    assert sorted(m.recipient.id for m in first.sent + following.sent) == sorted(f"p{n}" for n in range(40))


async def test_a_consumer_giving_its_partitions_up_asks_its_handler_to_stop_and_waits_for_it() -> None:
    listener = _HandOverWhenDone()
    async with listener.handling():
        revoking = asyncio.create_task(listener.on_partitions_revoked(set()))
        await wait_for(listener.asked.is_set, what="the hand-over to be asked")
        assert not revoking.done()  # the message under way is not done yet
    await wait_for(revoking.done, what="the hand-over once the message is done")
    await listener.on_partitions_assigned(set())
    assert not listener.asked.is_set()
