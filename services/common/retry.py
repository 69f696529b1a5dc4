"""Deferral, not failure: when a temporarily refused delivery is tried again, and the loop that does it.

A mail server's queue is the model: a delivery the channel refuses for now (SMTP 4xx, a dropped connection,
HTTP 429/5xx) is *deferred* and tried again on a schedule that reaches hours (1 min, 5 min, 30 min, 2 h, …)
until a horizon (24 h by default); only then, or on a permanent refusal, is it *failed*. The schedule lives
in the ledger (`next_attempt_at`), so a restart loses nothing, and the retrier sends what is due without
holding up anyone else's delivery.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from services.common.bus import DEPENDENCY_DOWN

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """`90s`, `5m`, `2h`, `1d`."""
    found = _DURATION.match(text)
    if not found or int(found.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 90s, 5m, 2h or 1d")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                                       timedelta(hours=2))
    horizon: timedelta = timedelta(hours=24)
    clock: Clock = lambda: datetime.now(UTC)

    @classmethod
    def from_settings(cls, schedule: str, horizon: str, clock: Clock | None = None) -> "RetryPolicy":
        """From BUDKAVLE_RETRY_SCHEDULE (`1m,5m,30m,2h`) and BUDKAVLE_RETRY_HORIZON (`24h`)."""
        steps = tuple(parse_duration(step) for step in schedule.split(",") if step.strip())
        if not steps:
            raise ValueError("BUDKAVLE_RETRY_SCHEDULE needs at least one duration, e.g. 1m,5m,30m,2h")
        return cls(steps, parse_duration(horizon), clock or (lambda: datetime.now(UTC)))

    def next_attempt(self, first_refused_at: datetime, attempts: int, now: datetime,
                     at_least: float | None = None) -> datetime | None:
        """When to try again after `attempts` refusals (the last step repeats), never sooner than the channel
        asked (`at_least` seconds, e.g. Retry-After); None once that would pass the horizon."""
        delay = self.schedule[max(1, min(attempts, len(self.schedule))) - 1]
        if at_least is not None:
            delay = max(delay, timedelta(seconds=at_least))
        at = now + delay
        return None if at > first_refused_at + self.horizon else at


C = TypeVar("C")


@dataclass
class Retrier(Generic[C]):
    """A channel's retry loop: sends the deferred deliveries that are due, from the ledger alone.

    `parse` turns a parked command back into its model; `expand` gives the command's deliveries to the
    given recipients (None: the group); `deliver` is the channel's deliver-once step in retry mode.
    """

    ledger: Any
    policy: RetryPolicy
    parse: Callable[[str], C]
    expand: Callable[[C, Collection[str | None]], Sequence[Any]]
    deliver: Callable[[Sequence[Any]], Any]
    batch: int = 500

    def __post_init__(self) -> None:
        self.wake = asyncio.Event()

    async def retry_due(self) -> int:
        """Try again every deferred delivery whose time has come; returns how many were tried."""
        due = await self.ledger.due(self.policy.clock(), self.batch)
        by_command: dict[str, set[str | None]] = {}
        for item in due:
            by_command.setdefault(item.command_body, set()).add(item.recipient_id)
        deliveries = [d for body, recipients in by_command.items() for d in self.expand(self.parse(body), recipients)]
        if deliveries:
            await self.deliver(deliveries)
        return len(deliveries)

    async def run(self) -> None:
        """Sleep until the next deferred delivery is due (or a new deferral wakes it), then send what is due.
        A channel that is down is waited for with back-off; the deliveries stay deferred meanwhile."""
        backoff = 1.0
        while True:
            self.wake.clear()
            try:
                tried = await self.retry_due()
                backoff = 1.0
            except DEPENDENCY_DOWN as exc:
                log.warning("retrying deferred deliveries failed; the channel or database is down",
                            extra={"reason": f"{type(exc).__name__}: {exc}"[:300]})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if tried >= self.batch:
                continue
            next_at = await self.ledger.next_due()
            timeout = 30.0 if next_at is None else (next_at - self.policy.clock()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=min(30.0, max(0.05, timeout)))
