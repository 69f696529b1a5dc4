"""What the gateway checks of a correction or a retraction before accepting it: that it amends an event of its
own programme that went out and was not withdrawn, and that a correction's fields fit that event's type.

The original is the start of the chain: a correction of a correction amends the same original, and the
register and the tailor know it by that id.
"""

from uuid import UUID

from contracts.events import AMENDMENTS, Correction, Event, apply_correction, parse_event
from services.common.problems import Problem
from services.gateway.store import GatewayStore, Held, StoredEvent


def _refused(reason: str, path: str = "payload.corrects") -> Problem:
    return Problem(422, "invalid event", [{"path": path, "reason": reason}])


async def original_of(event: Event, store: GatewayStore) -> str | None:
    """The id of the original an amendment amends (None for any other event), or the 422 that refuses it."""
    if event.type not in AMENDMENTS:
        return None
    named: UUID = event.payload.corrects  # type: ignore[union-attr]
    stored = await store.get(named)
    if stored is None or stored.program != event.program:
        raise _refused(f"no event {named} in programme {event.program!r}")
    if stored.type == "retraction":
        raise _refused(f"{named} is a retraction: it cannot be corrected or retracted")
    root = stored
    seen = {stored.event_id}
    while root.type in AMENDMENTS:
        found = await store.get(UUID(root.body["payload"]["corrects"]))
        if found is None or found.event_id in seen:
            raise _refused(f"the event {named} amends cannot be found")
        seen.add(found.event_id)
        root = found
    _check_sent(named, stored)
    _check_sent(named, root)
    if await store.retracted(root.event_id):
        raise _refused(f"{named} was retracted: nothing of it can be corrected or retracted again")
    if isinstance(event.payload, Correction):
        try:
            apply_correction(parse_event(root.body), event.payload)
        except ValueError as exc:
            first = str(exc).split(";", 1)[0]
            path, _, reason = first.partition(": ")
            raise _refused(str(exc), f"payload.{path}" if reason else "payload.corrected") from None
    return root.event_id


def _check_sent(named: UUID, stored: StoredEvent) -> None:
    if stored.state is not Held.RELEASED:
        said = {Held.CANCELLED: "was cancelled", Held.REJECTED: "was rejected",
                Held.AWAITING_APPROVAL: "awaits approval (change it instead)"}[stored.state]
        raise _refused(f"{named} was never sent: it {said}")
