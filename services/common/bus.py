"""Kafka through FastStream: broker construction, topic creation, publishing, dead letters.

Every service uses the same code path; only KAFKA_BOOTSTRAP_SERVERS differs between a laptop
and a cluster.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from contracts import topics
from contracts.deliveries import MAX_BUS_MESSAGE_BYTES, DeadLetter
from services.common.problems import field_problems

log = logging.getLogger(__name__)
T = TypeVar("T")

DEAD_LETTERS = Counter("budkavle_dead_letters_total", "Bus messages parked on the dead-letter topic", ["consumer"])
REDELIVERIES = Counter("budkavle_redeliveries_total", "Messages handed back to the bus after an error")

#: How often a handler may fail on one message for a reason other than a dependency being down, before the
#: message is dead-lettered with the reason.
HANDLER_ATTEMPTS = 3


class DependencyUnavailable(Exception):
    """Something a handler needs is down (a channel, the database, the broker): the message goes back to the
    bus and is tried again with back-off for as long as that takes; nothing is dead-lettered for it."""


#: Errors that mean "a dependency is down", not "this message cannot be handled".
DEPENDENCY_DOWN: tuple[type[BaseException], ...] = (
    DependencyUnavailable, OSError, TimeoutError, OperationalError, InterfaceError, KafkaError)


#: What a dependency refuses for good whenever it is asked: a message larger than the broker takes is a Kafka
#: error, but waiting for the broker to come back cannot help it. It is bounded and dead-lettered like any other.
NEVER_FITS: tuple[type[BaseException], ...] = (MessageSizeTooLargeError,)


class RetryAtOnce(Exception):
    """A handler failed on a message for another reason: it is handed back for an immediate retry, without
    back-off, so that the messages behind it wait only for the few attempts allowed."""


def redelivery_backoff(base_seconds: float = 0.2, max_seconds: float = 30.0) -> type[BaseMiddleware]:
    """A middleware that waits before a failed message is redelivered (NACK_ON_ERROR seeks back at once),
    doubling the wait for each consecutive failure of the same message, so that a broken dependency is
    not hammered. A `RetryAtOnce` is redelivered without waiting. Each broker gets its own class, and so
    its own memory of failures."""
    failures: dict[str, int] = {}

    class RedeliveryBackoff(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            key = str(msg.message_id)
            try:
                result = await call_next(msg)
            except RetryAtOnce:
                REDELIVERIES.inc()
                raise
            except Exception:
                n = failures.get(key, 0) + 1
                if len(failures) > 10_000:
                    failures.clear()
                failures[key] = n
                REDELIVERIES.inc()
                await asyncio.sleep(min(max_seconds, base_seconds * 2 ** (n - 1)))
                raise
            failures.pop(key, None)
            return result

    return RedeliveryBackoff


def create_broker(bootstrap_servers: str, client_id: str, idempotent: bool = False) -> KafkaBroker:
    """A broker whose producer waits for all in-sync replicas (aiokafka defaults to acks=1).

    Idempotence is opt-in (setting `kafka_enable_idempotence`) because the embedded tansu broker
    does not support the idempotent producer; production Kafka does.
    """
    return KafkaBroker(
        bootstrap_servers,
        acks="all",
        enable_idempotence=idempotent,
        max_request_size=MAX_BUS_MESSAGE_BYTES,
        client_id=client_id,
        logger=logging.getLogger("budkavle.bus"),
        middlewares=(redelivery_backoff(),),
    )


#: For the subscribers on an alert's path (events, delivery commands): Kafka's long poll returns as soon as
#: data arrives on Apache Kafka, but a shorter one bounds the wait on brokers that answer at the deadline;
#: and FastStream's batch subscriber sleeps `batch_timeout_ms` after an empty poll (200 ms by default), all
#: of which an alert arriving then would wait. Idle, this costs a few wake-ups a second per subscriber.
ALERT_FETCH_WAIT_MS: Final = 50
ALERT_BATCH_TIMEOUT_MS: Final = 25


class Bus:
    """What handlers need of the broker: publish a contract model with a key. It also remembers, per
    runtime, how often a handler has failed on each message (`bounded_failures`)."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        self.failures: dict[str, int] = {}

    async def publish(self, topic: str, message: BaseModel, key: str) -> None:
        await self.publish_json(topic, message.model_dump_json().encode(), key)

    async def publish_json(self, topic: str, body: bytes, key: str) -> None:
        await self.broker.publish(body, topic, key=key.encode(), headers={"content-type": "application/json"})


async def raw_body(msg: Any) -> Any:
    """A decoder that leaves the body as bytes (a list of them for batch subscribers): handlers validate
    it themselves, so that a body that is not even JSON reaches the dead-letter topic instead of failing
    inside FastStream's decoding."""
    return msg.body


async def decode_batch(msg: Any, parse: Callable[[bytes], T], bus: Bus, consumer: str) -> list[T]:
    """Parse every message of a batch subscriber's batch; those that fail go to the dead-letter topic."""
    return [value for _record, _body, value in await decode_each(msg, parse, bus, consumer)]


async def decode_each(msg: Any, parse: Callable[[bytes], T], bus: Bus, consumer: str) -> list[tuple[Any, bytes, T]]:
    """`decode_batch`, keeping each parsed value's record and body (to dead-letter that one alone)."""
    parsed: list[tuple[Any, bytes, T]] = []
    for record, body in records_of(msg):
        try:
            parsed.append((record, body, parse(body)))
        except (ValidationError, ValueError) as exc:
            await dead_letter_record(record, body, bus, consumer, validation_reason(exc))
    return parsed


def validation_reason(exc: ValidationError | ValueError) -> str:
    """Every invalid field's path and reason, without the offending input (it may hold addresses)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{p['path']}: {p['reason']}" for p in field_problems(exc))
    return str(exc)


async def dead_letter(msg: KafkaMessage, bus: Bus, consumer: str, reason: str) -> None:
    """Park a message the consumer cannot use on the dead-letter topic, with the reason."""
    await dead_letter_record(msg.raw_message, msg.body, bus, consumer, reason)


async def dead_letter_record(record: Any, body: bytes, bus: Bus, consumer: str, reason: str) -> None:
    topic = getattr(record, "topic", "") or ""
    letter = DeadLetter(
        topic=topic,
        consumer=consumer,
        reason=reason,
        payload=body[:65536].decode("utf-8", errors="replace"),
        at=datetime.now(UTC),
    )
    key = getattr(record, "key", None)
    await bus.publish(topics.DEAD_LETTER, letter, key=key.decode(errors="replace") if key else "")
    DEAD_LETTERS.labels(consumer).inc()
    log.warning("dead-lettered message", extra={"consumer": consumer, "topic": topic, "reason": reason[:500]})


async def decode_or_dead_letter(
    msg: KafkaMessage, parse: Callable[[bytes], T], bus: Bus, consumer: str
) -> T | None:
    """Parse a bus message; a message that fails goes to the dead-letter topic and the consumer goes on."""
    try:
        return parse(msg.body)
    except (ValidationError, ValueError) as exc:
        await dead_letter(msg, bus, consumer, validation_reason(exc))
        return None


def records_of(msg: Any) -> list[tuple[Any, bytes]]:
    """(Kafka record, body) of each message a (batch) subscriber received."""
    records = msg.raw_message if isinstance(msg.raw_message, (tuple, list)) else (msg.raw_message,)
    bodies = msg.body if isinstance(msg.body, list) else [msg.body]
    return list(zip(records, bodies, strict=True))


@asynccontextmanager
async def bounded_failures(received: Any, bus: Bus, consumer: str) -> AsyncIterator[None]:
    """Around a handler's work on `received` (a message, or some of a batch's (record, body) pairs): a
    dependency being down propagates (the message is redelivered with back-off); any other error is retried
    at once, at most HANDLER_ATTEMPTS times in all, and then those messages go to the dead-letter topic with
    the reason, and the consumer goes on. A poison message holds up those behind it for a few attempts,
    never for good."""
    records = received if isinstance(received, list) else records_of(received)
    first = records[0][0]
    key = f"{consumer}:{getattr(first, 'topic', '')}:{getattr(first, 'partition', '')}:{getattr(first, 'offset', '')}"
    try:
        yield
    except Exception as exc:
        if isinstance(exc, DEPENDENCY_DOWN) and not isinstance(exc, NEVER_FITS):
            raise
        attempts = bus.failures.pop(key, 0) + 1
        if attempts < HANDLER_ATTEMPTS:
            if len(bus.failures) > 10_000:
                bus.failures.clear()
            bus.failures[key] = attempts
            raise RetryAtOnce(f"{type(exc).__name__}: {exc}") from exc
        reason = f"handler failed {attempts} times: {type(exc).__name__}: {exc}"[:2000]
        log.error("giving up on a message; dead-lettered", exc_info=exc, extra={"consumer": consumer})
        for record, body in records:
            await dead_letter_record(record, body, bus, consumer, reason)
    else:
        bus.failures.pop(key, None)


async def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int = 3) -> None:
    """Create the topics Budkavle needs; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    for attempt in range(30):
        try:
            await admin.start()
            break
        except Exception:  # the broker may still be starting
            if attempt == 29:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
