"""Microsoft's limits on one Workflows/incoming webhook, kept by queueing rather than by provoking 429s.

At most 4 posts per second, 60 per 30 seconds and 100 per hour to one webhook. A post waits its turn when
the wait is short; when it is long (the hourly limit), the card is deferred until its turn instead of
holding up the cards of every other group.

The limits are Microsoft's per webhook, not per replica: every post is counted in the teams service's table
(`teams_webhook_posts`, keyed by a hash of the webhook, never its secret URL), and a turn is taken under a
per-webhook transaction lock on PostgreSQL, so that any number of replicas together stay within them. Times
are wall-clock seconds, since replicas share no monotonic clock; each window keeps a margin for skew.

Microsoft counts a post when it arrives, and that can be any time between leaving here and its answer
coming back. So a post counts at the latest it can have arrived: when its answer came back, or, while it
still awaits one, now (at most the client's timeout after it left: a replica that died mid-post leaves no
answer). A busy machine or network that holds one post back cannot then bunch five into Microsoft's second.
"""

import asyncio
import contextlib
import hashlib
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.delivery import TransientDeliveryError

#: (seconds, posts): Microsoft's documented limits per webhook.
WEBHOOK_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 4), (30.0, 60), (3600.0, 100))

#: How often a turn held up by posts still awaiting their answers looks again (their answers end the wait).
IN_FLIGHT_POLL = 0.05


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


def arrived_by(posted_at: float, answered_at: float | None, now: float, in_flight_for: float) -> float:
    """The latest a post can have reached Microsoft: when its answer came back; while it awaits one, now, but
    no later than `in_flight_for` after it left (the client gives up by then, or its replica died)."""
    if answered_at is not None:
        return answered_at
    return min(now, posted_at + in_flight_for)


def posts_table(metadata: MetaData) -> Table:
    return Table(
        "teams_webhook_posts", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("webhook", String(64), nullable=False, index=True),  # SHA-256 of the URL: the URL is a secret
        Column("posted_at", Float, nullable=False, index=True),  # when it took its turn and left
        Column("answered_at", Float),  # when its answer (or error) came back; none while in flight
    )


class WebhookLimiter:
    def __init__(self, engine: AsyncEngine, posts: Table, limits: tuple[tuple[float, int], ...] = WEBHOOK_LIMITS,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_wait: float = 5.0,
                 in_flight_for: float = 30.0) -> None:
        self.engine = engine
        self.posts = posts
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self.in_flight_for = in_flight_for  # at least the HTTP client's timeout
        self.horizon = max(margin(span) for span, _ in limits) + in_flight_for
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def turn(self, url: str) -> AsyncIterator[None]:
        """Wait for `url`'s turn (see `acquire`), post within the block; its answer is recorded on leaving."""
        post = await self.acquire(url)
        try:
            yield
        finally:
            async with self.engine.begin() as conn:
                await conn.execute(update(self.posts).where(self.posts.c.id == post).values(answered_at=self.clock()))

    async def acquire(self, url: str) -> int:
        """Wait for `url`'s turn, or raise TransientDeliveryError (deferred until then) if it is far off; the
        id of the post recorded."""
        webhook = hashlib.sha256(url.encode()).hexdigest()
        async with self._locks.setdefault(webhook, asyncio.Lock()):  # this process's turns, one at a time
            while True:
                post, wait, in_flight = await self._take_turn(webhook)
                if post is not None:
                    return post
                if in_flight:  # a post still on its way may end the wait at any moment
                    wait = min(wait, IN_FLIGHT_POLL)
                elif wait > self.max_wait:
                    raise TransientDeliveryError(
                        "held back to stay within Microsoft's webhook limits (4/s, 60/30 s, 100/h)", attempts=0,
                        retry_after=wait)
                await self.sleep(wait)

    async def _take_turn(self, webhook: str) -> tuple[int | None, float, bool]:
        """Record a post now if the limits allow it (its id), else how long until they do and whether a post
        awaiting its answer holds it up; in one transaction that other replicas' turns on the same webhook
        wait for."""
        c = self.posts.c
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": zlib.crc32(f"teams-webhook:{webhook}".encode())})
            now = self.clock()
            earlier = (await conn.execute(select(c.posted_at, c.answered_at).where(
                c.webhook == webhook, c.posted_at > now - self.horizon))).all()
            arrivals = sorted(arrived_by(p.posted_at, p.answered_at, now, self.in_flight_for) for p in earlier)
            wait = turn_in(arrivals, self.limits, now)
            if wait > 0:
                in_flight = any(p.answered_at is None and p.posted_at + self.in_flight_for > now for p in earlier)
                return None, wait, in_flight
            post = await conn.scalar(insert(self.posts).values(webhook=webhook, posted_at=now).returning(c.id))
            await conn.execute(delete(self.posts).where(c.webhook == webhook, c.posted_at <= now - self.horizon))
            return post, 0.0, False
