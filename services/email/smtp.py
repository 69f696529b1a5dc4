"""SMTP adapter: aiosmtplib behind the email service's `EmailSender`, with a connection pool, rate limit
and retries.

4xx replies and lost connections are retried with back-off; 5xx replies fail with the server's reason.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from services.common.delivery import ChannelUnavailable, PermanentDeliveryError, TransientDeliveryError
from services.email.sender import Mail
from services.email.wire import WireFormat


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
                 attempts: int = 3, backoff_seconds: float = 0.5, wire: WireFormat | None = None,
                 envelope_sender: Callable[[Mail], str] | None = None) -> None:
        self.config = config
        # Each mail's own envelope sender (VERP) when bounces are taken in; else the programme's address.
        self.envelope_sender = envelope_sender or (lambda mail: str(mail.command.sender_address))
        self.attempts = attempts  # connection attempts before the channel counts as unavailable
        self.backoff_seconds = backoff_seconds
        self.limiter = RateLimiter(rate_per_second)
        self.wire = wire or WireFormat()
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
            await client.sendmail(self.envelope_sender(mail), [str(mail.recipient.address)], message)
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
