"""Building a chunk's outcome announcement (`DeliveryOutcomes`) as a channel would, for tests of its readers."""

from datetime import UTC, datetime
from typing import Any

from contracts.deliveries import DeliveryOutcome, DeliveryOutcomes


def chunk_state(event_id: Any, audience_id: str, size: int, sent: int = 0, chunk: str = "c1",
                channel: str = "email", unsent: tuple[tuple[str | None, str, str, datetime | None], ...] = (),
                at: datetime | None = None, program: str = "fvm") -> DeliveryOutcomes:
    """A chunk of `size` deliveries: `sent` of them sent, and each of `unsent` (recipient, status, reason,
    next attempt) deferred or failed."""
    at = at or datetime.now(UTC)
    named = tuple(DeliveryOutcome(event_id=event_id, program=program, channel=channel, audience_id=audience_id,
                                  recipient_id=rid, status=status, reason=reason, next_attempt_at=next_at, at=at)
                  for rid, status, reason, next_at in unsent)
    return DeliveryOutcomes(event_id=event_id, program=program, channel=channel, audience_id=audience_id, chunk=chunk,
                            size=size, sent=sent, failed=sum(o.status == "failed" for o in named),
                            deferred=sum(o.status == "deferred" for o in named), unsent=named, at=at)
