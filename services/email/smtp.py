"""SMTP adapter: aiosmtplib behind the email service's `EmailSender`, with a connection pool, rate limit
and retries.

4xx replies and lost connections are retried with back-off; 5xx replies fail with the server's reason.

A mail's answer is written to the ledger while the same connection already sends the next mail: the next
mail's envelope and body go out at once, and only the final dot that ends its DATA waits until the previous
answer is written (`recorded`). Until that dot the server has accepted nothing, so a crash still repeats at
most one mail per connection (the one accepted and not yet written), while the database write no longer
stands between two mails.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings  # what aiosmtplib's DATA does
from aiosmtplib.typing import Default

from services.common.bus import DependencyUnavailable
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


class PreviousNotRecorded(DependencyUnavailable):
    """The previous mail on this connection could not be written to the ledger: this one was abandoned before
    its final dot (the server accepted nothing), and the batch goes back to the bus."""


class HeldBackSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client, whose DATA holds back its final dot until `gate` is done: the previous mail on this
    connection written to the ledger. Everything else (SIZE, SMTPUTF8, RSET after a refusal) stays
    aiosmtplib's `sendmail`; only the end of DATA is ours (aiosmtplib 5.1.3's `execute_data_command`, with a
    wait before the dot)."""

    gate: "asyncio.Future[None] | None" = None
    held_back = 0  # mails whose end waited for the previous answer to be written (the overlap, counted)

    async def data(self, message: str | bytes, /, *,
                   timeout: float | Literal[Default.token] | None = Default.token) -> aiosmtplib.SMTPResponse:
        gate, self.gate = self.gate, None
        if gate is None or (gate.done() and not gate.cancelled() and gate.exception() is None):
            return await super().data(message, timeout=timeout)
        protocol = self.protocol
        if protocol is None or protocol._command_lock is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        wait = self.timeout if timeout is Default.token else timeout
        body = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(
            message.encode("ascii") if isinstance(message, str) else message))
        try:
            async with protocol._command_lock:
                protocol._response_pending = True
                protocol.write(b"DATA\r\n")
                start = await protocol.read_response(timeout=wait)
                if start.code != aiosmtplib.SMTPStatus.start_input:
                    raise aiosmtplib.SMTPDataError(start.code, start.message)
                protocol.write(body)
                if not gate.done():
                    HeldBackSMTP.held_back += 1
                try:
                    await asyncio.shield(gate)
                except (Exception, asyncio.CancelledError) as exc:
                    self.close()  # never end this mail: the server discards it with the connection
                    if isinstance(exc, asyncio.CancelledError) and not gate.cancelled():
                        raise  # this send itself is cancelled
                    raise PreviousNotRecorded(f"the previous mail's answer was not written: {exc!r}") from exc
                protocol._response_pending = True
                protocol.write(b".\r\n")
                response = await protocol.read_response(timeout=wait)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise
        if response.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response


class SmtpSender:
    """One attempt per mail: a 4xx defers it (the caller's retry schedule, like a mail server's queue),
    a 5xx fails it. A connection lost mid-message is tried once more on a fresh connection (a pooled
    connection may have gone stale), then deferred. A server that cannot be reached at all makes the
    channel unavailable: nothing is recorded, and the batch waits on the bus for the server."""

    def __init__(self, config: SmtpConfig, pool_size: int = 4, rate_per_second: float = 0.0,
                 attempts: int = 3, backoff_seconds: float = 0.5, wire: WireFormat | None = None) -> None:
        self.config = config
        self.attempts = attempts  # connection attempts before the channel counts as unavailable
        self.backoff_seconds = backoff_seconds
        self.limiter = RateLimiter(rate_per_second)
        self.wire = wire or WireFormat()
        self._pool: asyncio.Queue[HeldBackSMTP] = asyncio.Queue()
        #: Per connection: the future of its last accepted mail's ledger write, which its next mail waits for.
        self._unrecorded: dict[int, asyncio.Future[None]] = {}
        for _ in range(pool_size):
            self._pool.put_nowait(self._client())

    #: `deliver_many` hands each mail a future of its ledger write (`recorded`) and lets the next mail start.
    holds_back_until_recorded = True

    def _client(self) -> HeldBackSMTP:
        c = self.config
        return HeldBackSMTP(hostname=c.host, port=c.port, username=c.username, password=c.password,
                               use_tls=c.use_tls, start_tls=c.starttls if c.starttls else False,
                               timeout=c.timeout)

    async def send(self, mail: Mail, /, recorded: "asyncio.Future[None] | None" = None) -> int:
        """Send one message; returns the attempts it took. `recorded` completes once its answer is written: the
        connection's next mail ends only after that."""
        message = self.wire.to_bytes(mail)
        last = ""
        dropped = 0
        for attempt in range(1, self.attempts + 1):
            await self.limiter.wait()
            try:
                await self._send_pooled(mail, message, recorded)
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

    async def _send_pooled(self, mail: Mail, message: bytes, recorded: "asyncio.Future[None] | None") -> None:
        client = await self._pool.get()
        previous = self._unrecorded.pop(id(client), None)
        try:
            if not client.is_connected:
                try:
                    await client.connect()
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    client.close()
                    raise _CannotConnect(f"{type(exc).__name__}: {exc}") from exc
            client.gate = previous
            await client.sendmail(str(mail.command.sender_address), [str(mail.recipient.address)], message)
            previous = recorded  # accepted: the connection's next mail waits for this one's write
        except (aiosmtplib.SMTPServerDisconnected, OSError, TimeoutError):
            client.close()
            raise
        finally:
            client.gate = None
            if previous is not None and not previous.done():
                self._unrecorded[id(client)] = previous
            self._pool.put_nowait(client)

    async def close(self) -> None:
        while not self._pool.empty():
            client = self._pool.get_nowait()
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
