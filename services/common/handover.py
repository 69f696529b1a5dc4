"""A consumer giving its partitions up in a rebalance, as a long handler sees it.

Kafka gives a member that is asked to rejoin only the rebalance timeout to do so; one that takes longer is
dropped from the group, and its partitions go to another member while it is still working on them. A batch
of email chunks takes longer than that on a slow relay, so a long handler does not finish its message once
a hand-over is asked for: it starts nothing new, lets what is under way end and be written, and raises
`HandedOver`. The message is not committed; the next owner reads it again and its ledger skips what was done.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class HandedOver(Exception):
    """The handler stopped early because its partitions are being handed over: what it did is recorded, the
    rest is for the next owner. Not a failure: no back-off, no attempt counted."""

    def __init__(self) -> None:
        super().__init__("the partitions are being handed over in a rebalance; the rest goes to their next owner")


_ASKED: ContextVar[asyncio.Event | None] = ContextVar("budkavle_handover_asked", default=None)


@contextmanager
def watching(asked: asyncio.Event) -> Iterator[None]:
    """Within this block, `handing_over()` answers whether `asked` is set."""
    token = _ASKED.set(asked)
    try:
        yield
    finally:
        _ASKED.reset(token)


def handing_over() -> bool:
    """Whether the consumer of the message being handled is asked to hand its partitions over (never, outside
    a consumer: the retrier, a test)."""
    asked = _ASKED.get()
    return asked is not None and asked.is_set()
