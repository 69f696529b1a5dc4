"""The suite's one way to wait: for a condition, never for a fixed time.

`wait_for` in async tests (the predicate may be a coroutine function), `wait_until` in sync ones; both
poll until the predicate holds and fail with what was awaited when the timeout passes.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 30.0,
                   what: str = "the condition", interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "the condition",
               interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
