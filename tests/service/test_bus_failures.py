"""How the one subscription helper bounds a handler's failures: an unreadable body and an `Unprocessable`
message are dead-lettered at once with the reason; a dependency that is down is waited for; anything else is
tried a few times and then dead-lettered with the reason (a message too large for the broker among them); and
the messages behind a failed one go on."""

import json
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from faststream.kafka import KafkaBroker, KafkaRouter, TestKafkaBroker

from contracts import topics
from contracts.people import SessionEnded
from contracts.subscriptions import Subscription
from services.common import subscriptions
from services.common.bus import Bus
from services.common.subscriptions import HANDLER_ATTEMPTS, Batch, RetryAtOnce, Unprocessable, subscribe, subscribe_batch
from tests.service.conftest import Recorder

TOPIC = topics.SESSION_ENDED
ONE = Subscription("tailor", "test", "test-bounds", SessionEnded.model_validate_json, (TOPIC,))
BATCH = Subscription("tailor", "test-batch", "test-bounds-batch", SessionEnded.model_validate_json, (TOPIC,), batch=10)


def ended(sid: str) -> bytes:
    return json.dumps({"sid": sid * 16, "ended_at": "2026-11-30T08:00:00Z",
                       "expires_at": "2026-11-30T16:00:00Z"}).encode()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscriptions, "BACKOFF_FIRST_SECONDS", 0.0)


async def test_a_message_too_large_for_the_broker_is_dead_lettered_after_a_few_tries_not_retried_for_ever(
        broker: KafkaBroker, bus: Bus, recorder: Recorder) -> None:
    """A probe's newsletter stayed `delivering` for ever: its commands were too large, and a Kafka error was
    taken for a broker that is down."""
    tries: list[str] = []

    async def handle(over: SessionEnded) -> None:
        tries.append(over.sid)
        raise MessageSizeTooLargeError("the message is 1260000 bytes")

    router = KafkaRouter()
    subscribe(router, ONE, bus, handle)
    broker.include_router(router)
    async with TestKafkaBroker(broker):
        for _ in range(HANDLER_ATTEMPTS - 1):
            with pytest.raises(RetryAtOnce):
                await broker.publish(ended("a"), TOPIC, key=b"k1")
        await broker.publish(ended("a"), TOPIC, key=b"k1")  # the last attempt: dead-lettered, the consumer goes on
    assert len(tries) == HANDLER_ATTEMPTS
    [letter] = recorder[topics.DEAD_LETTER]
    assert letter["consumer"] == "tailor" and "MessageSizeTooLargeError" in letter["reason"]
    assert letter["topic"] == TOPIC and "handler failed 3 times" in letter["reason"]


async def test_a_dependency_that_is_down_is_waited_for_and_nothing_is_dead_lettered(
        broker: KafkaBroker, bus: Bus, recorder: Recorder) -> None:
    down = True
    done: list[str] = []

    async def handle(over: SessionEnded) -> None:
        if down:
            raise KafkaConnectionError("no broker")
        done.append(over.sid)

    router = KafkaRouter()
    subscribe(router, ONE, bus, handle)
    broker.include_router(router)
    async with TestKafkaBroker(broker):
        for _ in range(HANDLER_ATTEMPTS + 2):  # more often than any other failure is allowed
            with pytest.raises(KafkaConnectionError):
                await broker.publish(ended("b"), TOPIC)
        down = False
        await broker.publish(ended("b"), TOPIC)
    assert done == ["b" * 16] and recorder[topics.DEAD_LETTER] == []


async def test_unreadable_and_unprocessable_messages_are_dead_lettered_with_their_reason_and_the_rest_go_on(
        broker: KafkaBroker, bus: Bus, recorder: Recorder) -> None:
    handled: list[Any] = []

    async def handle(over: SessionEnded) -> None:
        if over.sid.startswith("x"):
            raise Unprocessable("sessions of x are never ended")
        handled.append(over.sid)

    async def handle_batch(batch: Batch[SessionEnded]) -> None:
        handled.append((tuple(s.sid[0] for s in batch), batch.keys))

    router = KafkaRouter()
    subscribe(router, ONE, bus, handle)
    subscribe_batch(router, BATCH, bus, handle_batch)
    broker.include_router(router)
    async with TestKafkaBroker(broker):
        await broker.publish(b"{not json", TOPIC, key=b"k-bad")
        await broker.publish(ended("x"), TOPIC, key=b"k-x")
        await broker.publish_batch(ended("c"), b'{"sid": 1}', ended("d"), topic=TOPIC)
    letters = [(d["reason"], d["payload"]) for d in recorder[topics.DEAD_LETTER]]
    assert letters.count(("<root>: Invalid JSON: key must be a string at line 1 column 2", "{not json")) == 2
    assert ("sessions of x are never ended", ended("x").decode()) in letters  # by the subscription that refused it
    assert letters.count(("sid: Input should be a valid string; ended_at: Field required; expires_at: Field required",
                          '{"sid": 1}')) == 2
    assert len(letters) == 5
    assert [h for h in handled if isinstance(h, str)] == ["c" * 16, "d" * 16]  # in order, after the bad one
    assert sorted(h for h in handled if isinstance(h, tuple)) == [(("c", "d"), ("", "")), (("x",), ("k-x",))]
