"""Bounces (issue 21, item 5): a real RFC 3464 report sent to the inbound SMTP port, or dropped in the mailbox
directory, is matched by its VERP address to the delivery it is about; the tailor marks the address
undeliverable, and the next plan leaves it out with the reason. Whatever cannot be used changes nothing."""

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID, uuid4

import aiosmtplib
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import AddressBounced
from services.common.bus import Bus
from services.common.db import create_tables
from services.email.bounces import Unreadable, read_dsn, read_verp, verp_address
from services.email.intake import BounceIntake
from services.email.store import LEDGER
from services.email.store import metadata as email_metadata
from services.tailor.directory import Recipient
from services.tailor.service import Tailor
from tests.conftest import make_event
from tests.service.conftest import Recorder
from tests.waiting import wait_for

KEY = b"a-link-key-that-is-long-enough-for-hmac!"
DOMAIN = "bounces.fvm.example"
GROUP = "politisk-styrgrupp"


def dsn(to: str, final_recipient: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    return f"""From: MAILER-DAEMON@mx.example.se (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="XYZ"

--XYZ
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.se. Your message could not be delivered.

--XYZ
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.se
X-Postfix-Queue-ID: 4F1C2A0B3
Arrival-Date: Tue,  1 Dec 2026 10:00:00 +0100 (CET)

Final-Recipient: rfc822; {final_recipient}
Original-Recipient: rfc822;{final_recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.se
Diagnostic-Code: smtp; 550 {status} <{final_recipient}>: Recipient address rejected:
    User unknown in virtual mailbox table

--XYZ
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: FVM <fvm@vgregion.se>
Subject: Ny tidplan

--XYZ--
""".replace("\n", "\r\n").encode()


def test_a_verp_address_names_its_delivery_and_cannot_be_forged() -> None:
    event_id = uuid4()
    address = verp_address(KEY, DOMAIN, event_id, "hsa-0001234")
    local = address.split("@")[0]
    assert len(local) <= 64 and address.endswith(f"@{DOMAIN}")
    found = read_verp(KEY, DOMAIN, f"<{address.upper()}>")
    assert found is not None and found.event_id == event_id
    assert read_verp(b"another-key-that-is-long-enough-for-hmac", DOMAIN, address) is None  # forged
    assert read_verp(KEY, "bounces.other.example", address) is None
    assert read_verp(KEY, DOMAIN, address.replace("-", "-a", 1)) is None
    assert read_verp(KEY, DOMAIN, "fvm@vgregion.se") is None


def test_a_report_is_read_per_recipient_and_anything_else_is_unreadable() -> None:
    [hard] = read_dsn(dsn("x@y", "anna@example.se"))
    assert (hard.final_recipient, hard.status, hard.kind) == ("anna@example.se", "5.1.1", "hard")
    assert "User unknown" in hard.diagnostic
    [soft] = read_dsn(dsn("x@y", "anna@example.se", "4.2.2", "delayed"))
    assert soft.kind == "soft"
    [fine] = read_dsn(dsn("x@y", "anna@example.se", "2.0.0", "delivered"))
    assert fine.kind is None
    plain = EmailMessage()
    plain["Subject"] = "Out of office"
    plain.set_content("Jag är på semester.")
    for raw, why in ((plain.as_bytes(), "not a delivery status"),
                     (dsn("x@y", "anna@example.se").replace(b"Final-Recipient: rfc822;", b"Final-Recipient: x400;"),
                      "rfc822 Final-Recipient"),
                     (dsn("x@y", "anna@example.se", status="5.1"), "status such as"),
                     (b"\x00\xff not mail at all", "not a delivery status")):
        with pytest.raises(Unreadable, match=why):
            read_dsn(raw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def intake(engine: AsyncEngine, bus: Bus) -> BounceIntake:
    await create_tables(engine, email_metadata)
    return BounceIntake(KEY, DOMAIN, engine, LEDGER, bus, clock=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
async def inbound(intake: BounceIntake) -> AsyncIterator[int]:
    """The inbound SMTP port for bounces, served on loopback."""
    port, ready = free_port(), asyncio.Event()
    task = asyncio.create_task(intake.serve_smtp("127.0.0.1", port, ready))
    await asyncio.wait_for(ready.wait(), 10)
    yield port
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def mailed(engine: AsyncEngine, event_id: UUID, person: str) -> None:
    """The email ledger's record that `person`'s mail of the event went out."""
    async with engine.begin() as conn:
        await conn.execute(insert(LEDGER).values(
            delivery_key=f"{event_id}:{person}:email", event_id=str(event_id), audience_id=GROUP, recipient_id=person,
            status="sent", attempts=1, at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC)))


async def send(port: int, raw: bytes, to: str) -> None:
    """As a reporting mail server sends a bounce: from the null sender (MAIL FROM:<>)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
        await client.sendmail("", [to], raw)


async def test_a_hard_bounce_sent_to_the_inbound_port_stops_the_next_send_to_that_address(
        tailor: Tailor, intake: BounceIntake, inbound: int, engine: AsyncEngine, broker: KafkaBroker,
        recorder: Recorder, small_directory: list[Recipient]) -> None:
    members = sorted((r for r in small_directory if r.role == GROUP), key=lambda r: r.id)
    gone, other = members[0], members[1]
    sent = make_event(audiences=[GROUP])
    for person in (gone, other):
        await mailed(engine, sent.event_id, person.id)
    async with TestKafkaBroker(broker):
        # Not reports, or not for a mail of ours: counted, nothing announced.
        await send(inbound, "Subject: hej\r\n\r\nJag är ledig.\r\n".encode(), verp_address(KEY, DOMAIN, sent.event_id, gone.id))
        await send(inbound, dsn("x", gone.email), verp_address(KEY, DOMAIN, uuid4(), gone.id))  # never sent
        await send(inbound, dsn("x", gone.email), verp_address(b"a-forger-key-that-is-long-enough-for-it", DOMAIN,
                                                               sent.event_id, gone.id))
        assert recorder[topics.ADDRESS_BOUNCED] == []
        # A report naming an address the person does not have: announced, but the directory does not change.
        await send(inbound, dsn("x", "someone.else@example.se"), verp_address(KEY, DOMAIN, sent.event_id, other.id))
        # The real one.
        await send(inbound, dsn("x", gone.email.upper()), verp_address(KEY, DOMAIN, sent.event_id, gone.id))
        await wait_for(lambda: len(recorder[topics.ADDRESS_BOUNCED]) == 2, 10, what="the bounces announced")
        notice = AddressBounced.model_validate(recorder[topics.ADDRESS_BOUNCED][1])
        assert (notice.person_id, notice.kind, notice.status, notice.audience_id) == (gone.id, "hard", "5.1.1", GROUP)
        assert gone.email not in notice.model_dump_json() and "[adress]" in notice.reason  # no address travels
        assert await tailor.bounces.undeliverable() == {gone.id: "hard bounce 5.1.1"}

        plan = await tailor.plan(make_event(audiences=[GROUP]))
        reached = {r.id for r in plan.recipients("email")[GROUP]}
        assert gone.id not in reached and other.id in reached and len(reached) == len(members) - 1
        [group] = plan.contract.groups
        assert "1 left out: their address is undeliverable (hard bounce) (email)" in group.reasons
        assert await tailor.undeliverable("fvm") == {GROUP: 1}


async def test_soft_bounces_become_hard_after_the_limit_and_a_new_address_starts_afresh(
        tailor: Tailor, bus: Bus, broker: KafkaBroker, small_directory: list[Recipient]) -> None:
    person = next(r for r in small_directory if r.role == GROUP)
    from contracts.deliveries import address_sha256

    def soft(n: int) -> AddressBounced:
        return AddressBounced(event_id=uuid4(), audience_id=GROUP, person_id=person.id,
                              address_sha256=address_sha256(person.email), kind="soft", status="4.2.2",
                              reason="mailbox full", bounced_at=datetime(2026, 12, n, tzinfo=UTC))

    await tailor.bounces.record([soft(1), soft(2)])
    assert await tailor.bounces.undeliverable() == {}
    await tailor.bounces.record([soft(3)])
    assert await tailor.bounces.undeliverable() == {person.id: "3 soft bounces (last 4.2.2)"}
    moved = [r if r.id != person.id else Recipient(r.id, r.name, "ny.adress@example.se", r.organisation, r.role,
                                                   r.profession, r.area, r.municipality, r.options)
             for r in small_directory]
    await tailor.store.replace_directory(moved)
    assert await tailor.bounces.undeliverable() == {}  # the directory gave a new address


async def test_a_report_dropped_in_the_mailbox_directory_is_taken_and_filed(
        intake: BounceIntake, engine: AsyncEngine, broker: KafkaBroker, recorder: Recorder, tmp_path: Path) -> None:
    mailbox = tmp_path / "bounces"
    mailbox.mkdir()
    event_id = uuid4()
    await mailed(engine, event_id, "p1")
    (mailbox / "1.eml").write_bytes(dsn(verp_address(KEY, DOMAIN, event_id, "p1"), "p1@example.se"))
    (mailbox / "2.eml").write_bytes(b"To: postmaster@example.se\r\nSubject: spam\r\n\r\nKop nu.\r\n")
    async with TestKafkaBroker(broker):
        assert await intake.read_mailbox(mailbox) == 2
        assert await intake.read_mailbox(mailbox) == 0  # each once
    assert [AddressBounced.model_validate(b).person_id for b in recorder[topics.ADDRESS_BOUNCED]] == ["p1"]
    assert (mailbox / "done" / "1.eml").exists() and (mailbox / "unreadable" / "2.eml").exists()
