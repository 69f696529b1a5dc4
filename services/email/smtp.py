"""SMTP adapter: aiosmtplib behind the email service's `EmailSender`, with a connection pool, rate limit
and retries.

4xx replies and lost connections are retried with back-off; 5xx replies fail with the server's reason.
"""

import asyncio
import email
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from contracts.deliveries import SendEmail
from services.common.delivery import ChannelUnavailable, PermanentDeliveryError, TransientDeliveryError
from services.email.sender import Mail


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout: float = 30.0


def parse_smtp_url(url: str) -> SmtpConfig:
    """`smtp://[user:pass@]host:port[?starttls=true|tls=true]`."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must read smtp://[user:pass@]host:port[?starttls=true|tls=true]")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "tls"}
    if unknown:
        raise ValueError(f"SMTP_URL has unknown options {sorted(unknown)}")
    use_tls = parts.scheme == "smtps" or query.get("tls") == "true"
    starttls = query.get("starttls") == "true"
    if use_tls and starttls:
        raise ValueError("SMTP_URL: choose tls=true or starttls=true, not both")
    try:
        port = parts.port or (465 if use_tls else 25)
    except ValueError as exc:
        raise ValueError("SMTP_URL has a bad port") from exc
    return SmtpConfig(host=parts.hostname, port=port,
                      username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None,
                      starttls=starttls, use_tls=use_tls)


class WireFormat:
    """Turns one mail into the RFC 5322 bytes sent.

    Python's email package spends most of a send folding headers. The MIME body of a group's message
    is the same for every person in the group, so it is built once and reused (a small LRU cache);
    only the addressing headers are made per person.
    """

    def __init__(self, cache_size: int = 128, message_domain: str = "budkavle.local") -> None:
        self.cache_size = cache_size
        self.message_domain = message_domain
        self._bodies: OrderedDict[bytes, bytes] = OrderedDict()

    def _mime(self, cmd: SendEmail) -> bytes:
        key = hashlib.sha256(b"\0".join(
            x.encode() for x in (cmd.sender_name, str(cmd.sender_address), cmd.subject, cmd.text_body, cmd.html_body)
        )).digest()
        cached = self._bodies.get(key)
        if cached is not None:
            self._bodies.move_to_end(key)
            return cached
        part = EmailMessage(policy=SMTP)
        part["From"] = Address(display_name=cmd.sender_name, addr_spec=str(cmd.sender_address))
        part["Subject"] = cmd.subject
        # quoted-printable: any relay takes it, 8BITMIME or not
        part.set_content(cmd.text_body, cte="quoted-printable")
        part.add_alternative(cmd.html_body, subtype="html", cte="quoted-printable")
        mime = part.as_bytes(policy=SMTP)
        self._bodies[key] = mime
        if len(self._bodies) > self.cache_size:
            self._bodies.popitem(last=False)
        return mime

    def to_bytes(self, mail: Mail, list_unsubscribe: str | None = None) -> bytes:
        """The group's MIME body behind this person's addressing headers (and, for newsletters and
        digests, their one-click unsubscribe link, RFC 8058)."""
        cmd, to = mail.command, mail.recipient
        personal = [
            to_header(to.name, str(to.address)),
            f"Date: {formatdate(localtime=False, usegmt=True)}\r\n",
            f"Message-ID: {make_msgid(idstring=f'{cmd.event_id}.{to.id}', domain=self.message_domain)}\r\n",
            f"X-Budkavle-Event: {cmd.event_id}\r\n",
            f"X-Budkavle-Audience: {cmd.audience_id}\r\n",
        ]
        if list_unsubscribe:
            personal.append(f"List-Unsubscribe: <{list_unsubscribe}>\r\n")
            personal.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        return "".join(personal).encode("ascii") + self._mime(cmd)


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


def build_message(mail: Mail, list_unsubscribe: str | None = None) -> EmailMessage:
    """The message exactly as it goes on the wire, parsed back (for previews and tests)."""
    return email.message_from_bytes(WireFormat().to_bytes(mail, list_unsubscribe), policy=default)


class RateLimiter:
    """At most `rate` starts per second across the pool (a smooth, minimum-interval limiter)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class _CannotConnect(Exception):
    """Connecting (or greeting, TLS, login) failed: the server is not there for anyone."""


class SmtpSender:
    """One attempt per mail: a 4xx defers it (the caller's retry schedule, like a mail server's queue),
    a 5xx fails it. A connection lost mid-message is tried once more on a fresh connection (a pooled
    connection may have gone stale), then deferred. A server that cannot be reached at all makes the
    channel unavailable: nothing is recorded, and the batch waits on the bus for the server."""

    def __init__(self, config: SmtpConfig, pool_size: int = 4, rate_per_second: float = 0.0,
                 attempts: int = 3, backoff_seconds: float = 0.5) -> None:
        self.config = config
        self.attempts = attempts  # connection attempts before the channel counts as unavailable
        self.backoff_seconds = backoff_seconds
        self.limiter = RateLimiter(rate_per_second)
        self.wire = WireFormat()
        self._pool: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(pool_size):
            self._pool.put_nowait(self._client())

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(hostname=c.host, port=c.port, username=c.username, password=c.password,
                               use_tls=c.use_tls, start_tls=c.starttls if c.starttls else False,
                               timeout=c.timeout)

    async def send(self, mail: Mail, /) -> int:
        """Send one message; returns the attempts it took."""
        message = self.wire.to_bytes(mail)
        last = ""
        dropped = 0
        for attempt in range(1, self.attempts + 1):
            await self.limiter.wait()
            try:
                await self._send_pooled(mail, message)
                return attempt
            except aiosmtplib.SMTPResponseException as exc:
                reason = f"SMTP {exc.code} {exc.message}"
                if 500 <= exc.code < 600:
                    raise PermanentDeliveryError(reason, attempt) from exc
                raise TransientDeliveryError(reason, attempt) from exc
            except aiosmtplib.SMTPRecipientsRefused as exc:
                reason = "; ".join(f"SMTP {r.code} {r.message}" for r in exc.recipients)
                if all(500 <= r.code < 600 for r in exc.recipients):
                    raise PermanentDeliveryError(reason, attempt) from exc
                raise TransientDeliveryError(reason, attempt) from exc
            except _CannotConnect as exc:
                last = str(exc)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError) as exc:
                dropped += 1
                if dropped > 1:
                    raise TransientDeliveryError(f"connection lost while sending: {type(exc).__name__}: {exc}",
                                                 attempt) from exc
                continue  # at once, on a fresh connection
            except aiosmtplib.SMTPException as exc:
                raise TransientDeliveryError(f"{type(exc).__name__}: {exc}", attempt) from exc
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise ChannelUnavailable(f"gave up after {self.attempts} attempts: {last}", self.attempts)

    async def _send_pooled(self, mail: Mail, message: bytes) -> None:
        client = await self._pool.get()
        try:
            if not client.is_connected:
                try:
                    await client.connect()
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    client.close()
                    raise _CannotConnect(f"{type(exc).__name__}: {exc}") from exc
            await client.sendmail(str(mail.command.sender_address), [str(mail.recipient.address)], message)
        except (aiosmtplib.SMTPServerDisconnected, OSError, TimeoutError):
            client.close()
            raise
        finally:
            self._pool.put_nowait(client)

    async def close(self) -> None:
        while not self._pool.empty():
            client = self._pool.get_nowait()
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
