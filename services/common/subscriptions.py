"""The one way a service reads the bus: a declared `Subscription` (contracts/subscriptions.py) and a handler
that receives parsed models.

`subscribe` builds the FastStream subscriber. For every message it:
- parses the body into the declared model; an unreadable one goes to the dead-letter topic with every
  invalid field's path and reason, and the messages behind it go on;
- runs the handler; `Unprocessable` ("this message can never be handled") dead-letters the message at once
  with the reason;
- when a dependency is down (a channel, the database, the broker), hands the message back to the bus after
  a back-off that doubles with each consecutive failure, for as long as that takes; nothing is
  dead-lettered for it;
- for any other error, tries again at once, at most `HANDLER_ATTEMPTS` times in all, and then dead-letters
  the message with the reason: a poison message holds up those behind it for a few attempts, never for good.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter
from pydantic import ValidationError

from contracts import topics
from contracts.deliveries import DeadLetter
from contracts.subscriptions import Subscription
from services.common.bus import DEPENDENCY_DOWN, NEVER_FITS, Bus
from services.common.handover import HandedOver, watching
from services.common.problems import field_problems

log = logging.getLogger(__name__)
T = TypeVar("T")

DEAD_LETTERS = Counter("budkavle_dead_letters_total", "Bus messages parked on the dead-letter topic", ["consumer"])
REDELIVERIES = Counter("budkavle_redeliveries_total", "Messages handed back to the bus after an error")

#: How often a handler may fail on one message for a reason other than a dependency being down, before the
#: message is dead-lettered with the reason.
HANDLER_ATTEMPTS = 3
#: The back-off while a dependency is down: the first wait, doubled per consecutive failure, up to the last.
BACKOFF_FIRST_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 30.0


class Unprocessable(Exception):
    """This message can never be handled (a programme without configuration, a target group that does not
    exist): it goes to the dead-letter topic with this reason, and the consumer goes on."""


class RetryAtOnce(Exception):
    """A handler failed on a message for a reason other than a dependency: it is handed back for an
    immediate retry, without back-off, so that the messages behind it wait only for the attempts allowed."""


class Batch(list[T]):
    """The parsed messages of one poll, in order, with each one's bus key (`keys[i]` is `self[i]`'s)."""

    def __init__(self, values: Sequence[T], keys: Sequence[str]) -> None:
        super().__init__(values)
        self.keys = tuple(keys)
        self.refused: dict[int, str] = {}

    def refuse(self, value: T, reason: str) -> None:
        """This one message can never be handled (the handler used nothing of it): it goes to the
        dead-letter topic with the reason once the handler has returned, and the rest of the batch counts."""
        self.refused[next(i for i, v in enumerate(self) if v is value)] = reason


@dataclass(frozen=True)
class _Received(Generic[T]):
    record: Any  # the Kafka record (topic, partition, offset, key)
    body: bytes
    value: T

    @property
    def key(self) -> str:
        key = getattr(self.record, "key", None)
        return key.decode(errors="replace") if key else ""


class _Failures:
    """The one memory of failures of a subscriber: per message (its topic, partition and offset), how often in
    a row a dependency was down while handling it, and how often the handler failed on it otherwise."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}

    def add(self, position: str, dependency_down: bool) -> int:
        """One more failure of that kind; how many of that kind there have been."""
        down, other = self._counts.pop(position, (0, 0))
        counts = (down + 1, other) if dependency_down else (down, other + 1)
        if len(self._counts) >= self.LIMIT:
            self._counts.clear()
        self._counts[position] = counts
        return counts[0] if dependency_down else counts[1]

    def forget(self, position: str) -> None:
        self._counts.pop(position, None)


class _HandOverWhenDone(ConsumerRebalanceListener):  # type: ignore[misc]
    """On a rebalance, the partitions this consumer gives up are handed over only once the message it is
    handling is done or has stopped early (`handover.py`) with its results written: otherwise the next owner
    reads that message again from the last committed offset and handles it at the same time, and a ledger's
    look-before-send cannot see what the other has not written yet. aiokafka waits for this coroutine before
    it rejoins the group; `asked` tells a long handler to stop early, within the rebalance timeout."""

    def __init__(self) -> None:
        self.busy = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.asked = asyncio.Event()

    @asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        self.busy += 1
        self.idle.clear()
        try:
            yield
        finally:
            self.busy -= 1
            if not self.busy:
                self.idle.set()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.asked.set()
        await self.idle.wait()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.asked.clear()


def subscribe(router: KafkaRouter, subscription: Subscription[T], bus: Bus,
              handle: Callable[[T], Awaitable[None]]) -> None:
    """Handle each message on its own (each message of a batch subscription too, one after another, each with
    its own bounds): what fails of a batch comes back; what was done of it is done once (the handler is
    idempotent)."""
    failures = _Failures()
    in_flight = _HandOverWhenDone()

    async def on_message(msg: KafkaMessage) -> None:
        async with in_flight.handling():
            received = await _parse(msg, subscription, bus)
            errors: list[tuple[BaseException, int]] = []
            with watching(in_flight.asked):
                for one in received:
                    if in_flight.asked.is_set():  # the rest of the batch is for the partitions' next owner
                        errors.append((HandedOver(), 0))
                        break
                    try:
                        async with _bounded([one], subscription, bus, failures):
                            await handle(one.value)
                    except _Backoff as wait:
                        errors.append((wait.error, wait.failures))
                    except RetryAtOnce as exc:
                        errors.append((exc, 0))
                    except HandedOver as exc:
                        errors.append((exc, 0))
                        break
        await _hand_back(errors)

    _subscriber(router, subscription, handle, in_flight)(on_message)


def subscribe_batch(router: KafkaRouter, subscription: Subscription[T], bus: Bus,
                    handle: Callable[[Batch[T]], Awaitable[None]]) -> None:
    """Handle each poll's readable messages together (one transaction for many small facts): the bounds
    apply to the batch as a whole."""
    assert subscription.batch is not None, f"{subscription.title} is not declared a batch subscription"
    failures = _Failures()
    in_flight = _HandOverWhenDone()

    async def on_batch(msg: KafkaMessage) -> None:
        async with in_flight.handling():
            received = await _parse(msg, subscription, bus)
            if not received:
                return
            error: tuple[BaseException, int] | None = None
            try:
                with watching(in_flight.asked):
                    async with _bounded(received, subscription, bus, failures):
                        batch = Batch([r.value for r in received], [r.key for r in received])
                        await handle(batch)
                        for i, reason in batch.refused.items():
                            await dead_letter(received[i].record, received[i].body, bus, subscription.service,
                                              reason)
            except _Backoff as wait:
                error = (wait.error, wait.failures)
            except (RetryAtOnce, HandedOver) as exc:
                error = (exc, 0)
        if error is not None:
            await _hand_back([error])

    _subscriber(router, subscription, handle, in_flight)(on_batch)


def _subscriber(router: KafkaRouter, subscription: Subscription[Any], handle: Callable[..., Any],
                listener: _HandOverWhenDone) -> Any:
    """The FastStream subscriber of a declaration; the handler's docstring describes it in the AsyncAPI
    document."""
    options: dict[str, Any] = {}
    if handle.__doc__:
        options["description"] = handle.__doc__
    if subscription.batch is not None:
        options.update(batch=True, max_records=subscription.batch)
        if subscription.batch_timeout_ms is not None:
            options["batch_timeout_ms"] = subscription.batch_timeout_ms
    if subscription.fetch_wait_ms is not None:
        options["fetch_max_wait_ms"] = subscription.fetch_wait_ms
    return router.subscriber(*subscription.topics_now(), group_id=subscription.group, auto_offset_reset="earliest",
                             ack_policy=AckPolicy.NACK_ON_ERROR, decoder=_raw_body, title=subscription.title,
                             listener=listener, **options)


async def _raw_body(msg: Any) -> Any:
    """Leave the body as bytes (a list of them for batch subscribers): `_parse` validates it, so that a body
    that is not even JSON reaches the dead-letter topic instead of failing inside FastStream's decoding."""
    return msg.body


async def _parse(msg: Any, subscription: Subscription[T], bus: Bus) -> list[_Received[T]]:
    records = msg.raw_message if isinstance(msg.raw_message, (tuple, list)) else (msg.raw_message,)
    bodies = msg.body if isinstance(msg.body, list) else [msg.body]
    parsed: list[_Received[T]] = []
    for record, body in zip(records, bodies, strict=True):
        try:
            parsed.append(_Received(record, body, subscription.parse(body)))
        except (ValidationError, ValueError) as exc:
            if subscription.dead_letter_unreadable:
                await dead_letter(record, body, bus, subscription.service, validation_reason(exc))
            else:
                log.warning("unreadable message skipped", extra={
                    "consumer": subscription.service, "offset": getattr(record, "offset", None)})
    return parsed


class _Backoff(Exception):
    """A dependency is down: hand the message back after a wait that grows with `failures`."""

    def __init__(self, error: BaseException, failures: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.failures = failures


@asynccontextmanager
async def _bounded(received: list[_Received[Any]], subscription: Subscription[Any], bus: Bus,
                   failures: _Failures) -> AsyncIterator[None]:
    """Around a handler's work on some received messages: see the module's docstring."""
    first = received[0].record
    position = ":".join(str(getattr(first, a, "")) for a in ("topic", "partition", "offset"))
    consumer = subscription.service

    async def dead_letter_all(reason: str) -> None:
        for one in received:
            await dead_letter(one.record, one.body, bus, consumer, reason)

    try:
        yield
    except HandedOver:
        raise  # not a failure of this message: it stays uncommitted for the next owner
    except Unprocessable as exc:
        failures.forget(position)
        await dead_letter_all(str(exc))
    except Exception as exc:
        if isinstance(exc, DEPENDENCY_DOWN) and not isinstance(exc, NEVER_FITS):
            raise _Backoff(exc, failures.add(position, dependency_down=True)) from exc
        attempts = failures.add(position, dependency_down=False)
        if attempts < HANDLER_ATTEMPTS:
            raise RetryAtOnce(f"{type(exc).__name__}: {exc}") from exc
        failures.forget(position)
        log.error("giving up on a message; dead-lettered", exc_info=exc, extra={"consumer": consumer})
        await dead_letter_all(f"handler failed {attempts} times: {type(exc).__name__}: {exc}"[:2000])
    else:
        failures.forget(position)


async def _hand_back(errors: list[tuple[BaseException, int]]) -> None:
    """Let the bus redeliver what failed: after a back-off when a dependency is down, at once otherwise."""
    if not errors:
        return
    REDELIVERIES.inc()
    longest = max(n for _error, n in errors)
    if longest:
        await asyncio.sleep(min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (longest - 1)))
    raise errors[0][0]


def validation_reason(exc: ValidationError | ValueError) -> str:
    """Every invalid field's path and reason, without the offending input (it may hold addresses)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{p['path']}: {p['reason']}" for p in field_problems(exc))
    return str(exc)


async def dead_letter(record: Any, body: bytes, bus: Bus, consumer: str, reason: str) -> None:
    """Park a message the consumer cannot use on the dead-letter topic, with the reason and its own key."""
    topic = getattr(record, "topic", "") or ""
    letter = DeadLetter(topic=topic, consumer=consumer, reason=reason,
                        payload=body[:65536].decode("utf-8", errors="replace"), at=datetime.now(UTC))
    key = getattr(record, "key", None)
    await bus.publish(topics.DEAD_LETTER, letter, key=key.decode(errors="replace") if key else "")
    DEAD_LETTERS.labels(consumer).inc()
    log.warning("dead-lettered message", extra={"consumer": consumer, "topic": topic, "reason": reason[:500]})
