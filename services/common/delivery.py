"""What every channel shares: the sender interface and its errors, and the deliver-once step over the
ledger (`ledger.py`) with deferral (`retry.py`).

A delivery ledger row keyed by (event, recipient or group, channel) is written before the offset is
committed; a redelivered command finds its rows, sends nothing and re-announces the recorded outcomes.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import Counter

from contracts import topics
from contracts.deliveries import DeliveryCommand, DeliveryOutcome, DeliveryOutcomes
from services.common.bus import Bus, DependencyUnavailable
from services.common.handover import HandedOver, handing_over
from services.common.ledger import Ledger, LedgerEntry
from services.common.retry import RetryPolicy

log = logging.getLogger(__name__)

DELIVERIES = Counter("budkavle_deliveries_total", "Delivery attempts by outcome", ["channel", "status"])


#: An address in a server's reply (`550 5.1.1 <anna@…>: unknown user`): local part, @, domain.
ADDRESS = re.compile(r"[^\s<>()\[\]{}\"',;:@]+@[^\s<>()\[\]{}\"',;:@]+")


def without_addresses(reason: str) -> str:
    """A refusal's code and reason, with every address in it replaced: mail servers name the recipient, and a
    reason is logged, carried on the bus and shown in the event's status."""
    return ADDRESS.sub("[adress]", reason)


class DeliveryError(Exception):
    """A channel's refusal. Its reason never carries an address, whatever the channel answered."""

    def __init__(self, reason: str, attempts: int = 1) -> None:
        reason = without_addresses(reason)
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class TransientDeliveryError(DeliveryError):
    """The channel may accept the message later (SMTP 4xx, HTTP 429/5xx, connection lost mid-message): the
    delivery is deferred. `retry_after` is how long the channel asked to wait, if it said (seconds)."""

    def __init__(self, reason: str, attempts: int = 1, retry_after: float | None = None) -> None:
        super().__init__(reason, attempts)
        self.retry_after = retry_after


class WaitingForOriginal(TransientDeliveryError):
    """A correction's delivery whose original has not reached its recipient yet: tried again soon (the
    original is on its way in the same fan-out), not on a mail server's schedule."""


#: How much of a refusal's reason its outcome carries (a chunk's every reason fits in one bus message).
REASON_ON_THE_BUS = 500

#: How soon a delivery waiting for its original is tried again.
FOLLOW_WAIT = timedelta(seconds=5)


class PermanentDeliveryError(DeliveryError):
    """The channel refused the message for good (SMTP 5xx, HTTP 4xx, a forbidden webhook)."""


class ChannelUnavailable(TransientDeliveryError, DependencyUnavailable):
    """The channel itself cannot be reached (connection refused, lost, timed out). Nothing is recorded as
    failed: the batch is handed back to the bus and tried again, with back-off, until the channel is back."""


C = TypeVar("C", bound=DeliveryCommand)
D = TypeVar("D", bound="Delivery[Any]")
D_contra = TypeVar("D_contra", bound="Delivery[Any]", contravariant=True)


@dataclass(frozen=True)
class Delivery(Generic[C]):
    """One delivery of a command: to one person (`recipient_id`), or to the command's group (None)."""

    command: C
    recipient_id: str | None

    @property
    def key(self) -> str:
        return self.command.delivery_key(self.recipient_id)


class Sender(Protocol[D_contra]):
    """What every channel adapter is: send one delivery, return the attempts it took, or raise a
    TransientDeliveryError / PermanentDeliveryError (ChannelUnavailable when the channel is down)."""

    async def send(self, delivery: D_contra, /) -> int: ...


class _Following(Generic[D]):
    """A sender for deliveries that follow an original's (a correction's, a retraction's): each goes only where
    the channel delivered the original, and after it. Not yet delivered there: deferred, to follow it; failed
    there: nothing to amend."""

    def __init__(self, sender: "Sender[D]", originals: dict[str, LedgerEntry]) -> None:
        self.sender, self.originals = sender, originals

    async def send(self, delivery: D, /) -> int:
        key = delivery.command.follows_key(delivery.recipient_id)
        if key is not None:
            original = self.originals.get(key)
            if original is None or original.status == "deferred":
                raise WaitingForOriginal("the original has not reached them yet; this follows it")
            if original.status == "failed":
                raise PermanentDeliveryError("the original never reached them; there is nothing to amend")
        return await self.sender.send(delivery)


async def _attempt(delivery: D, sender: Sender[D], before: LedgerEntry | None, policy: RetryPolicy) -> LedgerEntry:
    """The ledger entry for one send; ChannelUnavailable (and anything unexpected) propagates."""
    done = before.attempts if before is not None else 0
    try:
        return LedgerEntry("sent", None, done + await sender.send(delivery))
    except ChannelUnavailable:
        raise
    except TransientDeliveryError as exc:
        now = policy.clock()
        first = (before.first_attempt_at if before is not None else None) or now
        attempts = done + exc.attempts
        next_at = policy.next_attempt(first, attempts, now, exc.retry_after)
        if isinstance(exc, WaitingForOriginal) and next_at is not None:
            next_at = now + FOLLOW_WAIT
        if next_at is not None:
            return LedgerEntry("deferred", f"temporary: {exc.reason}"[:2000], attempts, next_at, first)
        entry = LedgerEntry("failed", f"temporary, gave up after {attempts} attempts: {exc.reason}"[:2000], attempts)
    except PermanentDeliveryError as exc:
        entry = LedgerEntry("failed", f"permanent: {exc.reason}"[:2000], done + exc.attempts)
    cmd = delivery.command
    log.warning("delivery failed", extra={"event_id": str(cmd.event_id), "channel": cmd.channel,
                                          "audience_id": cmd.audience_id, "reason": entry.reason})
    return entry


async def deliver_many(deliveries: Sequence[D], sender: Sender[D], ledger: Ledger, bus: Bus,
                       policy: RetryPolicy | None = None, concurrency: int = 16,
                       retrying: bool = False) -> list[LedgerEntry]:
    """Send what the ledger has not seen, record the results, then announce every outcome.

    At most `concurrency` sends are in flight or unrecorded (for email: the connection pool), and results
    are recorded as they come: a crash repeats at most `concurrency` deliveries, never a whole batch. A
    delivery repeated in the batch (a redelivery) is sent once and announced for each copy. A temporary
    refusal defers the delivery (`policy` says until when); the retrier (`retrying=True`) sends the
    deferred ones again. Every result is recorded before the caller lets the offsets be committed. A
    delivery that follows an original's (`follows`: a correction) waits for it, and goes only where it went.
    """
    policy = policy or RetryPolicy()
    known = await ledger.lookup_many([d.key for d in deliveries])
    follows = [key for d in deliveries if (key := d.command.follows_key(d.recipient_id)) is not None]
    if follows:
        sender = _Following(sender, await ledger.lookup_many(follows))
    todo: dict[str, D] = {}
    for delivery in deliveries:
        entry = known.get(delivery.key)
        if entry is None or (retrying and entry.status == "deferred"):
            todo.setdefault(delivery.key, delivery)
    if len(todo) < len(deliveries) and not retrying:
        log.info("redelivered deliveries found in ledger; nothing sent twice",
                 extra={"channel": deliveries[0].command.channel, "count": len(deliveries) - len(todo)})
    limit = asyncio.Semaphore(concurrency)
    fresh: dict[str, LedgerEntry] = {}
    commit = _GroupCommit(ledger)

    async def attempt(delivery: D) -> None:
        # A slot is held until the answer is written, so sends in flight plus answers not yet written never
        # exceed `concurrency`: that bounds what a crash can repeat.
        async with limit:
            if handing_over():  # the partition goes to another consumer: it sends the rest
                raise HandedOver()
            entry = await _attempt(delivery, sender, known.get(delivery.key), policy)
            DELIVERIES.labels(delivery.command.channel, entry.status).inc()
            fresh[delivery.key] = entry
            await commit.record(delivery, entry)

    results = await asyncio.gather(*(attempt(d) for d in todo.values()), return_exceptions=True)
    unavailable = [r for r in results if isinstance(r, BaseException)]
    entries = {**known, **fresh}
    # Each command's state so far, if any of it was tried (a hand-over or a channel that went down leaves
    # some untried: announced again, whole, when they are done); the retrier announces the commands it moved.
    commands = {d.command.bus_key: d.command for d in deliveries if d.key in (fresh if retrying else entries)}
    await announce(bus, list(commands.values()), entries, ledger)
    if unavailable:
        # What was sent is recorded and announced; the rest goes back to the bus (the ledger keeps the
        # redelivered batch from sending anything twice).
        if all(isinstance(e, HandedOver) for e in unavailable):
            log.info("partition handed over in a rebalance; the rest of the batch goes to its next owner",
                     extra={"channel": deliveries[0].command.channel, "pending": len(unavailable)})
            raise unavailable[0]
        unavailable = [e for e in unavailable if not isinstance(e, HandedOver)]
        log.warning("channel unavailable; batch handed back for redelivery",
                    extra={"channel": deliveries[0].command.channel, "pending": len(unavailable),
                           "reason": str(unavailable[0])[:300]})
        raise unavailable[0]
    return [entries[d.key] for d in deliveries]


class _GroupCommit:
    """Writes ledger entries as the answers come in, many to a transaction: the answers that arrive while
    one write is under way are written together by the next (group commit). Each writer waits for its own
    row; a write that fails fails every answer in it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.pending: list[tuple[Any, LedgerEntry, asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def record(self, delivery: Any, entry: LedgerEntry) -> None:
        written = asyncio.get_running_loop().create_future()
        self.pending.append((delivery, entry, written))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        await written

    async def _write(self) -> None:
        # One connection for as long as answers keep coming: a checkout per batch cost as much as the write.
        # Answers that arrive while the connection is handed back are taken by the outer loop.
        while self.pending:
            async with self.ledger.engine.connect() as conn:
                while self.pending:
                    batch, self.pending = self.pending, []
                    try:
                        await self.ledger.record_on(conn, [(delivery, entry) for delivery, entry, _ in batch])
                        await conn.commit()
                    except Exception as exc:  # handed to each waiter: its delivery counts as not recorded
                        for *_, written in batch:
                            if not written.done():
                                written.set_exception(exc)
                        with contextlib.suppress(Exception):
                            await conn.rollback()
                        break  # the rest on a fresh connection
                    for *_, written in batch:
                        if not written.done():
                            written.set_result(None)


async def announce(bus: Bus, commands: Sequence[DeliveryCommand], entries: dict[str, LedgerEntry],
                   ledger: Ledger) -> None:
    """Publish each command's state, counted (`DeliveryOutcomes`): its deliveries not in `entries` are read
    from the ledger, so the state is the whole chunk's even when only some of it was just tried."""
    missing = [key for cmd in commands for r in cmd.recipient_ids() if (key := cmd.delivery_key(r)) not in entries]
    if missing:
        entries = {**entries, **await ledger.lookup_many(missing)}
    now = datetime.now(UTC)
    states = [chunk_state(cmd, entries, now) for cmd in commands]
    await asyncio.gather(*(bus.publish(topics.DELIVERY_OUTCOMES, state, key=state.bus_key) for state in states))


def chunk_state(command: DeliveryCommand, entries: dict[str, LedgerEntry], at: datetime) -> DeliveryOutcomes:
    """A command's deliveries counted by status, the failed and deferred ones named with their reasons."""
    counts = {"sent": 0, "failed": 0, "deferred": 0}
    unsent = []
    for recipient in command.recipient_ids():
        entry = entries.get(command.delivery_key(recipient))
        if entry is None:
            continue
        counts[entry.status] += 1
        if entry.status != "sent":
            unsent.append(DeliveryOutcome(
                event_id=command.event_id, program=command.program, channel=command.channel,
                audience_id=command.audience_id, recipient_id=recipient, status=entry.status,
                reason=(entry.reason or "")[:REASON_ON_THE_BUS] or None, attempts=entry.attempts,
                next_attempt_at=entry.next_attempt_at, at=at))
    return DeliveryOutcomes(event_id=command.event_id, program=command.program, channel=command.channel,
                            audience_id=command.audience_id, chunk=command.bus_key, size=len(command.recipient_ids()),
                            unsent=tuple(unsent), at=at, **counts)
