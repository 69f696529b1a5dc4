"""How a handler's failure is bounded: a dependency that is down is waited for, anything else is tried a few
times and then dead-lettered with the reason — a message too large for the broker among them."""

from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from faststream.kafka import KafkaBroker, TestKafkaBroker

from contracts import topics
from services.common.bus import HANDLER_ATTEMPTS, Bus, RetryAtOnce, bounded_failures
from tests.service.conftest import Recorder


async def test_a_message_too_large_for_the_broker_is_dead_lettered_after_a_few_tries_not_retried_for_ever(
        broker: KafkaBroker, bus: Bus, recorder: Recorder) -> None:
    """A probe's newsletter stayed `delivering` for ever: its commands were too large, and a Kafka error was
    taken for a broker that is down."""
    record = SimpleNamespace(topic=topics.event_topic("newsletter.issue"), partition=0, offset=7, key=b"e1")
    tries = 0
    async with TestKafkaBroker(broker):
        for _ in range(HANDLER_ATTEMPTS):
            try:
                async with bounded_failures([(record, b'{"event_id": "e1"}')], bus, "tailor"):
                    tries += 1
                    raise MessageSizeTooLargeError("the message is 1260000 bytes")
            except RetryAtOnce:
                continue
        with pytest.raises(KafkaConnectionError):  # a broker that is really down is still waited for
            async with bounded_failures([(record, b"{}")], bus, "tailor"):
                raise KafkaConnectionError("no broker")
    assert tries == HANDLER_ATTEMPTS
    [letter] = recorder[topics.DEAD_LETTER]
    assert letter["consumer"] == "tailor" and "MessageSizeTooLargeError" in letter["reason"]
    assert letter["topic"] == topics.event_topic("newsletter.issue")
