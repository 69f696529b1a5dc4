"""One mail as the RFC 5322 bytes sent.

Python's email package spends most of a send folding headers. The MIME body of a group's message is the
same for every person in the group, so it is built once and reused (a small LRU cache); only the
addressing headers are made per person. A mail with follow-up links (every event's mail) is each person's
own: their signed feedback token in the bodies' feedback slots. A bulk mail (a newsletter, a digest)
also carries their signed preference link, the RFC 8058 List-Unsubscribe headers, and a DKIM signature when
a key is configured. A personal mail's bodies are quoted-printable-encoded per person by `binascii` (fast),
behind a header block made once per group.
"""

import binascii
import email
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import formatdate, make_msgid

import dkim

from contracts.deliveries import PersonalLink, SendEmail, fill
from services.common.links import FEEDBACK, FEEDBACK_TTL, PREFERENCES, LinkSigner, feedback_claims
from services.email.sender import Mail

#: The headers a bulk mail's DKIM signature covers (large mail providers want List-Unsubscribe signed).
DKIM_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe", b"List-Unsubscribe-Post")


@dataclass(frozen=True)
class Personal:
    """How a mail becomes one person's own: their signed links, and where they lead."""

    signer: LinkSigner
    public_url: str
    ttl: timedelta = timedelta(days=60)

    def token(self, mail: Mail) -> str:
        cmd = mail.command
        return self.signer.sign(PREFERENCES, {"program": cmd.program, "person": mail.recipient.id,
                                               "audience": cmd.audience_id}, self.ttl)

    def feedback_token(self, mail: Mail) -> str:
        """The person's own follow-up token: about the event a delivery follows (a reminder's, a correction's
        original, whose answers and acknowledgements count), or else about its own."""
        cmd = mail.command
        about = cmd.follows or cmd.event_id
        return self.signer.sign(FEEDBACK, feedback_claims(cmd.program, str(about), cmd.audience_id,
                                                          mail.recipient.id), FEEDBACK_TTL)


@dataclass(frozen=True)
class Dkim:
    """A DKIM key: the selector, the signing domain, the private key (PEM)."""

    selector: str
    domain: str
    private_key: bytes

    def sign(self, message: bytes) -> bytes:
        present = [h for h in DKIM_HEADERS if re.search(rb"(?im)^" + h + rb":", message.split(b"\r\n\r\n", 1)[0])]
        header = dkim.sign(message, self.selector.encode(), self.domain.encode(), self.private_key,
                           include_headers=present)
        return bytes(header) + message


class WireFormat:
    def __init__(self, cache_size: int = 128, message_domain: str = "budkavle.local", personal: Personal | None = None,
                 dkim_key: Dkim | None = None) -> None:
        self.cache_size = cache_size
        self.message_domain = message_domain
        self.personal = personal
        self.dkim = dkim_key
        self._bodies: OrderedDict[tuple[bytes, bool], bytes] = OrderedDict()

    def _cached(self, cmd: SendEmail, group: bytes, personal: bool) -> bytes:
        """The group's MIME body (or, for a personal mail, its header block), made once; `group` is
        `_group_key`."""
        key = (group, personal)
        cached = self._bodies.get(key)
        if cached is not None:
            self._bodies.move_to_end(key)
            return cached
        part = EmailMessage(policy=SMTP)
        part["From"] = Address(display_name=cmd.sender_name, addr_spec=str(cmd.sender_address))
        part["Subject"] = cmd.subject
        if personal:  # the header block only; the parts are each person's own
            part["MIME-Version"] = "1.0"
            part["Content-Type"] = f'multipart/alternative; boundary="{_boundary(group)}"'
            made = part.as_bytes(policy=SMTP).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        else:
            # quoted-printable: any relay takes it, 8BITMIME or not
            part.set_content(fill(cmd.text_body, {}), cte="quoted-printable")
            part.add_alternative(fill(cmd.html_body, {}), subtype="html", cte="quoted-printable")
            made = part.as_bytes(policy=SMTP)
        self._bodies[key] = made
        if len(self._bodies) > self.cache_size:
            self._bodies.popitem(last=False)
        return made

    def _personal_body(self, cmd: SendEmail, group: bytes, tokens: dict[PersonalLink, str]) -> bytes:
        boundary = _boundary(group).encode()
        out = [self._cached(cmd, group, personal=True)]
        for subtype, body in (("plain", cmd.text_body), ("html", cmd.html_body)):
            own = fill(body, tokens)
            text = own.replace("\r\n", "\n").encode("utf-8")
            out += [b"--", boundary, b'\r\nContent-Type: text/', subtype.encode(), b'; charset="utf-8"\r\n'
                    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                    binascii.b2a_qp(text, istext=True).replace(b"\n", b"\r\n"), b"\r\n"]
        out += [b"--", boundary, b"--\r\n"]
        return b"".join(out)

    def to_bytes(self, mail: Mail, list_unsubscribe: str | None = None) -> bytes:
        """The group's MIME body behind this person's addressing headers; with follow-up links, theirs
        alone; for a bulk mail also with their one-click unsubscribe link (RFC 8058), and signed when a DKIM
        key is configured."""
        cmd, to = mail.command, mail.recipient
        token = self.personal.token(mail) if cmd.bulk and self.personal else ""
        asks = PersonalLink.FEEDBACK in cmd.personal_links
        feedback = self.personal.feedback_token(mail) if asks and self.personal else ""
        if token and self.personal:
            list_unsubscribe = f"{self.personal.public_url}/unsubscribe/{token}"
        headers = [
            to_header(to.name, str(to.address)),
            f"Date: {formatdate(localtime=False, usegmt=True)}\r\n",
            f"Message-ID: {make_msgid(idstring=f'{cmd.event_id}.{to.id}', domain=self.message_domain)}\r\n",
            f"X-Budkavle-Event: {cmd.event_id}\r\n",
            f"X-Budkavle-Audience: {cmd.audience_id}\r\n",
        ]
        if list_unsubscribe:
            headers.append(f"List-Unsubscribe: <{list_unsubscribe}>\r\n")
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        group = _group_key(cmd)
        personal = cmd.bulk or asks
        tokens = {PersonalLink.PREFERENCES: token, PersonalLink.FEEDBACK: feedback}
        body = self._personal_body(cmd, group, tokens) if personal else self._cached(cmd, group, False)
        message = "".join(headers).encode("ascii") + body
        return self.dkim.sign(message) if cmd.bulk and self.dkim else message


def _group_key(cmd: SendEmail) -> bytes:
    """What makes a group's message the same for everyone in it (the cache's key)."""
    return hashlib.sha256(b"\0".join(x.encode() for x in (
        cmd.sender_name, str(cmd.sender_address), cmd.subject, fill(cmd.text_body, _SLOT_KEYS),
        fill(cmd.html_body, _SLOT_KEYS)))).digest()


#: How each slot stands in `_group_key`: a mail's slots are part of what makes it the group's.
_SLOT_KEYS = {link: f"\0{link.value}\0" for link in PersonalLink}


def _boundary(key: bytes) -> str:
    # "=_" never occurs in quoted-printable text ("=" is followed by hex digits or a line break)
    return f"=_budkavle_{key[:12].hex()}"


_PLAIN_NAME = re.compile(r"[A-Za-z0-9 !#$%&'*+/=?^_`{|}~-]*")


def to_header(name: str, address: str) -> str:
    """The To line, folded. Python's header registry parses what it folds and costs more than the rest of a
    send; an ASCII name is quoted and a Swedish one encoded (RFC 2047) directly, and only the rare name or
    address that needs more goes through the registry."""
    if address.isascii():
        if not name:
            return f"To: {address}\r\n"
        if _PLAIN_NAME.fullmatch(name):
            display = name
        elif name.isascii() and name.isprintable():
            display = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            display = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
        line = f"To: {display} <{address}>"
        if len(line) <= 78:
            return line + "\r\n"
    return str(SMTP.fold(*SMTP.header_store_parse("To", Address(display_name=name, addr_spec=address))))


def build_message(mail: Mail, list_unsubscribe: str | None = None, wire: WireFormat | None = None) -> EmailMessage:
    """The message exactly as it goes on the wire, parsed back (for previews and tests)."""
    return email.message_from_bytes((wire or WireFormat()).to_bytes(mail, list_unsubscribe), policy=default)
