"""The preference centre's use case: read a person's choices, change them, announce every change."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from contracts import topics
from contracts.preferences import DigestChoice, PreferencesChanged
from services.common.bus import Bus
from services.preferences.store import PreferencesStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class PreferenceCentre:
    def __init__(self, store: PreferencesStore, bus: Bus, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock

    async def current(self, program: str, person_id: str) -> PreferencesChanged:
        """The person's choices, or the defaults (the group's cadence, newsletters, awareness on the intranet)."""
        return (await self.store.get(program, person_id) or
                PreferencesChanged(program=program, person_id=person_id, changed_at=self.clock()))

    async def choose(self, program: str, person_id: str, digest: DigestChoice, newsletters: bool,
                     awareness_email: bool) -> PreferencesChanged:
        choice = PreferencesChanged(program=program, person_id=person_id, digest=digest, newsletters=newsletters,
                                    awareness_email=awareness_email, changed_at=self.clock())
        await self.store.save(choice)
        await self._announce(choice)
        log.info("preferences changed", extra={"program": program, "digest": digest, "newsletters": newsletters,
                                               "awareness_email": awareness_email})
        return choice

    async def unsubscribe(self, program: str, person_id: str) -> PreferencesChanged:
        """RFC 8058 one-click: no newsletters and no digests, at once (must-know news still comes)."""
        current = await self.current(program, person_id)
        return await self.choose(program, person_id, "none", False, current.awareness_email)

    async def announce_pending(self) -> int:
        """After a start: announce what was saved but not announced (the bus may have lost it)."""
        pending = await self.store.unannounced()
        for choice in pending:
            await self._announce(choice)
        return len(pending)

    async def _announce(self, choice: PreferencesChanged) -> None:
        await self.bus.publish(topics.PREFERENCES_CHANGED, choice, choice.bus_key)
        await self.store.mark_announced(choice)
