"""Microsoft's limits on one Workflows/incoming webhook, kept by queueing rather than by provoking 429s.

At most 4 posts per second, 60 per 30 seconds and 100 per hour to one webhook. A post waits its turn when
the wait is short; when it is long (the hourly limit), the card is deferred until its turn instead of
holding up the cards of every other group.
"""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from services.common.delivery import TransientDeliveryError

#: (seconds, posts): Microsoft's documented limits per webhook.
WEBHOOK_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 4), (30.0, 60), (3600.0, 100))


class WebhookLimiter:
    def __init__(self, limits: tuple[tuple[float, int], ...] = WEBHOOK_LIMITS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_wait: float = 5.0) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self._posts: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def wait(self, url: str, now: float) -> float:
        """Seconds until `url` may take one more post without breaking a limit (0: now). Each window is
        kept with a small margin: a post reaches Microsoft a little after it leaves here, and not always
        in the order it left."""
        posts = self._posts.get(url, deque())
        wait = 0.0
        for span, limit in self.limits:
            span += min(1.0, span / 10)
            recent = [t for t in posts if t > now - span]
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + span - now)
        return wait

    async def acquire(self, url: str) -> None:
        """Wait for `url`'s turn, or raise TransientDeliveryError (deferred until then) if it is far off."""
        async with self._locks.setdefault(url, asyncio.Lock()):
            while (wait := self.wait(url, self.clock())) > 0:
                if wait > self.max_wait:
                    raise TransientDeliveryError(
                        "held back to stay within Microsoft's webhook limits (4/s, 60/30 s, 100/h)", attempts=0,
                        retry_after=wait)
                await self.sleep(wait)
            posts = self._posts.setdefault(url, deque())
            posts.append(self.clock())
            longest = max(span for span, _ in self.limits)
            while posts and posts[0] <= posts[-1] - longest:
                posts.popleft()
