"""Undeliverable addresses: the tailor's read model of bounces (`delivery.bounced`), which the next plans and
digests honour by leaving the address out, with the reason in the plan.

A hard bounce marks the person's address undeliverable at once; soft bounces are counted and mark it after
`soft_limit` of them. A bounce counts only for the address the person has now (its hash must match): one for
a person not in the directory, or for an address they no longer have, is counted as unreadable and changes
nothing. A new address in a later import starts afresh.
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import AddressBounced, address_sha256
from services.common.db import upsert
from services.tailor.store import bounces, recipients

log = logging.getLogger(__name__)

UNMATCHED = Counter("budkavle_bounces_unmatched_total", "Bounces for no one in the directory, or for an address "
                                                        "the person no longer has: nothing changed")


class Bounces:
    def __init__(self, engine: AsyncEngine, soft_limit: int = 3) -> None:
        self.engine = engine
        self.soft_limit = soft_limit

    async def record(self, notices: Iterable[AddressBounced]) -> int:
        """Take bounces in order; returns how many changed something."""
        changed = 0
        async with self.engine.begin() as conn:
            for notice in sorted(notices, key=lambda n: n.bounced_at):
                email = (await conn.execute(select(recipients.c.email).where(
                    recipients.c.id == notice.person_id))).scalar()
                if email is None or address_sha256(email) != notice.address_sha256:
                    UNMATCHED.inc()
                    log.warning("bounce for no one in the directory with that address: nothing changed",
                                extra={"event_id": str(notice.event_id)})
                    continue
                row = (await conn.execute(select(bounces).where(bounces.c.person_id == notice.person_id))).first()
                soft = row.soft if row is not None and row.address_sha256 == notice.address_sha256 else 0
                already = row.undeliverable if row is not None and row.address_sha256 == notice.address_sha256 else None
                why = already
                if notice.kind == "hard":
                    why = why or f"hard bounce {notice.status}"
                else:
                    soft += 1
                    if soft >= self.soft_limit:
                        why = why or f"{soft} soft bounces (last {notice.status})"
                await upsert(conn, bounces, {"person_id": notice.person_id, "address_sha256": notice.address_sha256,
                                             "soft": soft, "undeliverable": why, "updated_at": datetime.now(UTC)},
                             ("person_id",))
                changed += 1
        return changed

    async def undeliverable(self) -> dict[str, str]:
        """Person → why their current address takes no mail."""
        return {person: why for person, _name, _email, why in await self.listing()}

    async def listing(self) -> list[tuple[str, str, str, str]]:
        """(person, name, address, why) of each address that takes no mail while it is still the person's, by
        name (an admin reads it)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(bounces.c.person_id, bounces.c.address_sha256, bounces.c.undeliverable,
                                              recipients.c.name, recipients.c.email)
                                       .join(recipients, recipients.c.id == bounces.c.person_id)
                                       .where(bounces.c.undeliverable.is_not(None)))).all()
        return sorted(((r.person_id, r.name, r.email, r.undeliverable) for r in rows
                       if address_sha256(r.email) == r.address_sha256), key=lambda x: (x[1], x[0]))
