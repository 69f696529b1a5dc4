"""Bounces: each mail goes out with its own envelope sender (VERP) under the bounce domain, so that a delivery
status notification (RFC 3464) that comes back names the very delivery it is about, and nobody can forge one
for a delivery they did not get.

A VERP address reads `bounce+<event>-<person>-<mac>@<bounce domain>`: the event's id (base32, 26
characters), a hash of the person's directory id (13) and a MAC over both (8), so it fits a local part's 64
characters whatever the id. The person is found again among the event's ledger rows by that hash.

Pure here: the address, reading it back, and reading a DSN. What it decides: a permanent failure (`5.x.x`,
action `failed`) is a hard bounce, a delay or temporary failure (`4.x.x`, action `delayed`) a soft one;
anything else is no bounce at all.
"""

import base64
import email
import email.policy
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal
from uuid import UUID

PREFIX = "bounce"

Kind = Literal["hard", "soft"]


class Unreadable(ValueError):
    """A message that is no delivery status notification Budkavle can use; the reason names why."""


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def person_hash(recipient_id: str) -> str:
    return _b32(hashlib.sha256(recipient_id.encode()).digest()[:8])


def _mac(key: bytes, event_part: str, person_part: str) -> str:
    return _b32(hmac.new(key, f"{event_part}-{person_part}".encode(), hashlib.sha256).digest()[:5])


def verp_address(key: bytes, domain: str, event_id: UUID, recipient_id: str) -> str:
    event_part, person_part = _b32(event_id.bytes), person_hash(recipient_id)
    return f"{PREFIX}+{event_part}-{person_part}-{_mac(key, event_part, person_part)}@{domain}"


_VERP = re.compile(rf"^{PREFIX}\+([a-z2-7]{{26}})-([a-z2-7]{{13}})-([a-z2-7]{{8}})@(.+)$")


@dataclass(frozen=True)
class Verp:
    event_id: UUID
    person_hash: str


def read_verp(key: bytes, domain: str, address: str) -> Verp | None:
    """The delivery a VERP address of ours names; None for any other address, or one whose MAC is wrong."""
    m = _VERP.match(address.strip().strip("<>").lower())
    if m is None or m[4] != domain.lower() or not hmac.compare_digest(m[3], _mac(key, m[1], m[2])):
        return None
    return Verp(UUID(bytes=base64.b32decode(m[1].upper() + "======")), m[2])


@dataclass(frozen=True)
class Status:
    """One recipient's part of a DSN."""

    final_recipient: str  # the address, as the reporting server names it
    action: str
    status: str  # e.g. 5.1.1
    diagnostic: str

    @property
    def kind(self) -> Kind | None:
        if self.action == "failed" and self.status.startswith("5."):
            return "hard"
        if self.action in ("delayed", "failed") and self.status.startswith("4."):
            return "soft"
        return None  # delivered, relayed, expanded: no bounce


_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


def read_dsn(raw: bytes) -> list[Status]:
    """The per-recipient statuses of an RFC 3464 delivery status notification; Unreadable otherwise."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if msg.get_content_type() != "multipart/report" or msg.get_param("report-type") != "delivery-status":
        raise Unreadable("not a delivery status notification (RFC 3464: multipart/report; "
                         "report-type=delivery-status)")
    parts = [p for p in msg.iter_parts() if p.get_content_type() == "message/delivery-status"]
    if not parts:
        raise Unreadable("a report without its message/delivery-status part")
    fields = _status_groups(parts[0])
    statuses = []
    for group in fields[1:]:  # the first group is the message's, the rest one per recipient
        recipient = group.get("final-recipient", "")
        kind, _, address = recipient.partition(";")
        status = group.get("status", "").split()[0] if group.get("status") else ""
        if kind.strip().lower() != "rfc822" or "@" not in address or not _STATUS.match(status):
            raise Unreadable("a recipient without an rfc822 Final-Recipient and a status such as 5.1.1")
        statuses.append(Status(address.strip().strip("<>"), group.get("action", "").strip().lower(), status,
                               " ".join(group.get("diagnostic-code", "").split())[:300]))
    if not statuses:
        raise Unreadable("a delivery status without any recipient")
    return statuses


def _status_groups(part: Message) -> list[dict[str, str]]:
    """The header groups of a message/delivery-status part (the standard library parses the part as a list of
    header blocks; its text is read here field by field, so both shapes it gives are handled)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [{k.lower(): str(v) for k, v in block.items()} for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    groups: list[dict[str, str]] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        fields: dict[str, str] = {}
        for line in re.sub(r"\r?\n[ \t]+", " ", block).splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if fields:
            groups.append(fields)
    return groups


def envelope_addresses(raw: bytes) -> list[str]:
    """Where a bounce in a mailbox was addressed (the envelope's recipient, as the receiving server wrote it)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    found = []
    for header in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        for value in msg.get_all(header, []):
            found += re.findall(r"[^\s<>,\"]+@[^\s<>,\"]+", str(value))
    return found
