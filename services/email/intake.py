"""Taking bounces in: delivery status notifications (RFC 3464) arrive on an inbound SMTP port (aiosmtpd) or as
files in a mailbox directory; each is read, matched to the delivery its envelope recipient (our VERP address)
names, and announced as `AddressBounced` for the tailor, which owns the directory.

Whatever cannot be used is counted as unreadable and changes nothing: a message that is no RFC 3464 report,
one for an address of ours that no mail went out under (or with a wrong MAC), one whose delivery the ledger
does not know. A report that tells of a delivery (action delivered, relayed, expanded) is no bounce.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import AddressBounced, address_sha256
from services.common.bus import Bus
from services.common.delivery import without_addresses
from services.email.bounces import Unreadable, Verp, envelope_addresses, person_hash, read_dsn, read_verp

log = logging.getLogger(__name__)

BOUNCES = Counter("budkavle_bounces_total", "Bounces taken in, by kind", ["kind"])
UNREADABLE = Counter("budkavle_bounces_unreadable_total", "Messages to the bounce address that could not be used",
                     ["reason"])


class BounceIntake:
    def __init__(self, key: bytes, domain: str, engine: AsyncEngine, ledger: Table, bus: Bus,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.key = key
        self.domain = domain
        self.engine = engine
        self.ledger = ledger
        self.bus = bus
        self.clock = clock

    async def take(self, raw: bytes, envelope_to: Sequence[str]) -> str:
        """Read one message sent to a bounce address; returns what came of it ("hard", "soft", "no bounce", or
        "unreadable: <why>")."""
        verps = [v for address in envelope_to if (v := read_verp(self.key, self.domain, address)) is not None]
        try:
            statuses = read_dsn(raw)
        except Unreadable as exc:
            return self._unreadable("not_a_dsn", str(exc))
        if not verps:
            return self._unreadable("never_sent", "addressed to no envelope sender of ours")
        found = await self._delivery(verps[0])
        if found is None:
            return self._unreadable("never_sent", "for a mail the ledger never sent")
        bounced = [s for s in statuses if s.kind is not None]
        if not bounced:
            return "no bounce"
        status, (person_id, audience_id) = bounced[0], found
        kind = status.kind
        assert kind is not None
        notice = AddressBounced(event_id=verps[0].event_id, audience_id=audience_id, person_id=person_id,
                                address_sha256=address_sha256(status.final_recipient), kind=kind, status=status.status,
                                reason=without_addresses(status.diagnostic)[:300], bounced_at=self.clock())
        await self.bus.publish(topics.ADDRESS_BOUNCED, notice, notice.bus_key)
        BOUNCES.labels(kind).inc()
        log.info("bounce taken", extra={"event_id": str(notice.event_id), "kind": kind, "status": status.status})
        return kind

    def _unreadable(self, reason: str, why: str) -> str:
        UNREADABLE.labels(reason).inc()
        log.warning("message to the bounce address not used", extra={"reason": why})
        return f"unreadable: {why}"

    async def _delivery(self, verp: Verp) -> tuple[str, str] | None:
        """(person, target group) of the event's email delivery whose person the VERP address names."""
        t = self.ledger
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.c.recipient_id, t.c.audience_id).where(
                t.c.event_id == str(verp.event_id), t.c.recipient_id.is_not(None)))).all()
        for recipient_id, audience_id in rows:
            if person_hash(recipient_id) == verp.person_hash:
                return recipient_id, audience_id
        return None

    # Where bounces come in ---------------------------------------------------------------------------------

    async def serve_smtp(self, host: str, port: int, ready: asyncio.Event | None = None) -> None:
        """An inbound SMTP server for bounces until cancelled. Every message is accepted (250): one that cannot be
        used is counted, never refused, so that no server keeps retrying it."""
        from aiosmtpd.smtp import SMTP

        intake = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
                content = envelope.original_content or envelope.content or b""
                await intake.take(content if isinstance(content, bytes) else content.encode(), envelope.rcpt_tos)
                return "250 OK"

        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="budkavle-bounces"), host=host, port=port)
        log.info("taking bounces by SMTP", extra={"host": host, "port": port})
        if ready is not None:
            ready.set()
        async with server:
            await server.serve_forever()

    async def read_mailbox(self, directory: Path) -> int:
        """Take every message file in `directory` once: moved to `done/` when used, `unreadable/` otherwise."""
        taken = 0
        for path in await asyncio.to_thread(_messages, directory):
            raw = await asyncio.to_thread(path.read_bytes)
            outcome = await self.take(raw, envelope_addresses(raw))
            await asyncio.to_thread(_file_away, path, "unreadable" if outcome.startswith("unreadable") else "done")
            taken += 1
        return taken

    async def watch_mailbox(self, directory: Path, every_seconds: float = 10.0) -> None:
        """`read_mailbox` until cancelled (a mail server's delivery agent drops bounces there)."""
        while True:
            try:
                await self.read_mailbox(directory)
            except OSError as exc:
                log.warning("bounce mailbox not readable", extra={"error": f"{type(exc).__name__}: {exc}"})
            await asyncio.sleep(every_seconds)


def _messages(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def _file_away(path: Path, folder: str) -> None:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    path.replace(target / path.name)
