"""Microsoft's limits on one Workflows/incoming webhook, kept by queueing rather than by provoking 429s.

At most 4 posts per second, 60 per 30 seconds and 100 per hour to one webhook. A post waits its turn when
the wait is short; when it is long (the hourly limit), the card is deferred until its turn instead of
holding up the cards of every other group.

The limits are Microsoft's per webhook, not per replica: every post is counted in the teams service's table
(`teams_webhook_posts`, keyed by a hash of the webhook, never its secret URL), and a turn is taken under a
per-webhook transaction lock on PostgreSQL, so that any number of replicas together stay within them. Times
are wall-clock seconds, since replicas share no monotonic clock; each window keeps a margin for skew.
"""

import asyncio
import hashlib
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.delivery import TransientDeliveryError

#: (seconds, posts): Microsoft's documented limits per webhook.
WEBHOOK_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 4), (30.0, 60), (3600.0, 100))


def margin(span: float) -> float:
    """A window is kept a little longer than Microsoft's: a post reaches Microsoft a little after it leaves
    here, not always in the order it left, and replicas' clocks differ by a little. At least a quarter of a
    second: a busy machine delayed one post of four by more than the tenth of a second once allowed, and the
    receiver counted five in its second."""
    return span + max(0.25, min(1.0, span / 10))


def turn_in(posts: Sequence[float], limits: tuple[tuple[float, int], ...], now: float) -> float:
    """Seconds until a webhook with these earlier posts (oldest first) may take one more (0: now)."""
    wait = 0.0
    for span, limit in limits:
        window = margin(span)
        recent = [t for t in posts if t > now - window]
        if len(recent) >= limit:
            wait = max(wait, recent[-limit] + window - now)
    return wait


def posts_table(metadata: MetaData) -> Table:
    return Table(
        "teams_webhook_posts", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("webhook", String(64), nullable=False, index=True),  # SHA-256 of the URL: the URL is a secret
        Column("posted_at", Float, nullable=False, index=True),
    )


class WebhookLimiter:
    def __init__(self, engine: AsyncEngine, posts: Table, limits: tuple[tuple[float, int], ...] = WEBHOOK_LIMITS,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_wait: float = 5.0) -> None:
        self.engine = engine
        self.posts = posts
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self.horizon = max(margin(span) for span, _ in limits)
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, url: str) -> None:
        """Wait for `url`'s turn, or raise TransientDeliveryError (deferred until then) if it is far off."""
        webhook = hashlib.sha256(url.encode()).hexdigest()
        async with self._locks.setdefault(webhook, asyncio.Lock()):  # this process's turns, one at a time
            while (wait := await self._take_turn(webhook)) > 0:
                if wait > self.max_wait:
                    raise TransientDeliveryError(
                        "held back to stay within Microsoft's webhook limits (4/s, 60/30 s, 100/h)", attempts=0,
                        retry_after=wait)
                await self.sleep(wait)

    async def _take_turn(self, webhook: str) -> float:
        """Record a post now if the limits allow it (0), else how long until they do; in one transaction that
        other replicas' turns on the same webhook wait for."""
        c = self.posts.c
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": zlib.crc32(f"teams-webhook:{webhook}".encode())})
            now = self.clock()
            earlier = (await conn.execute(select(c.posted_at).where(
                c.webhook == webhook, c.posted_at > now - self.horizon).order_by(c.posted_at))).scalars().all()
            wait = turn_in(earlier, self.limits, now)
            if wait == 0:
                await conn.execute(insert(self.posts).values(webhook=webhook, posted_at=now))
                await conn.execute(delete(self.posts).where(c.webhook == webhook, c.posted_at <= now - self.horizon))
            return wait
