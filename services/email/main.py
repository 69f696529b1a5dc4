"""Composition root of the email channel."""

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

from pydantic import Field, field_validator

from contracts.deliveries import SendEmail
from programs import load_programs
from services.common.delivery import deliver_many
from services.common.ledger import Ledger
from services.common.links import LinkSigner, link_key
from services.common.retention import retention_loop
from services.common.retry import Retrier
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.email.bounces import verp_address
from services.email.handlers import build_router
from services.email.intake import BounceIntake
from services.email.sender import EmailSender, Mail
from services.email.smtp import SmtpSender, parse_smtp_url
from services.email.store import LEDGER, MIGRATIONS, PARKED
from services.email.wire import Dkim, Personal, WireFormat


class EmailSettings(CommonSettings):
    smtp_url: str = Field(default="", alias="SMTP_URL")
    #: SMTP connections, each with one mail in flight. 16 measured best here (in process: 508 mails/s over 4,
    #: 805 over 16, 893 over 32; the platform: 353 over 4, 487 over 16): bigger ledger batches, fewer
    #: wake-ups per mail. A crash repeats at most one mail per connection; the relay must allow as many.
    smtp_pool_size: int = Field(default=16, alias="BUDKAVLE_SMTP_POOL_SIZE", ge=1, le=64)
    smtp_rate_per_second: float = Field(default=0.0, alias="BUDKAVLE_SMTP_RATE", ge=0)
    link_key: str = Field(default="", alias="BUDKAVLE_LINK_KEY")
    #: DKIM for bulk mail (newsletters, digests): the private key (PEM) file, the selector, and the signing
    #: domain (default: the domain of each programme's sender address).
    dkim_key_file: Path | None = Field(default=None, alias="BUDKAVLE_DKIM_KEY_FILE")
    dkim_selector: str = Field(default="", alias="BUDKAVLE_DKIM_SELECTOR")
    dkim_domain: str = Field(default="", alias="BUDKAVLE_DKIM_DOMAIN")

    #: Bounces: each mail's envelope sender is its own address under this domain (VERP), and delivery status
    #: notifications come back on an inbound SMTP port and/or as files in a mailbox directory.
    bounce_domain: str = Field(default="", alias="BUDKAVLE_BOUNCE_DOMAIN", pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$|^$")
    bounce_smtp_port: int = Field(default=0, alias="BUDKAVLE_BOUNCE_SMTP_PORT", ge=0, le=65535)
    bounce_smtp_host: str = Field(default="127.0.0.1", alias="BUDKAVLE_BOUNCE_SMTP_HOST")
    bounce_mailbox: Path | None = Field(default=None, alias="BUDKAVLE_BOUNCE_MAILBOX")

    @field_validator("dkim_key_file", "bounce_mailbox", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value


def dkim_key(settings: EmailSettings) -> Dkim | None:
    """The DKIM key when one is configured; a clear exit when it is half configured or unreadable."""
    if settings.dkim_key_file is None and not settings.dkim_selector:
        return None
    if settings.dkim_key_file is None or not settings.dkim_selector:
        raise SystemExit("DKIM needs both BUDKAVLE_DKIM_KEY_FILE and BUDKAVLE_DKIM_SELECTOR")
    try:
        key = settings.dkim_key_file.read_bytes()
    except OSError as exc:
        raise SystemExit(f"BUDKAVLE_DKIM_KEY_FILE {settings.dkim_key_file}: {exc.strerror}") from exc
    if b"PRIVATE KEY-----" not in key:
        raise SystemExit(f"BUDKAVLE_DKIM_KEY_FILE {settings.dkim_key_file}: not a PEM private key")
    domains = {str(p.sender.address).rsplit("@", 1)[1] for p in load_programs(settings.programs_dir).values()}
    domain = settings.dkim_domain or (domains.pop() if len(domains) == 1 else "")
    if not domain:
        raise SystemExit("BUDKAVLE_DKIM_DOMAIN is needed: the programmes send from several domains")
    return Dkim(settings.dkim_selector, domain, key)


def build(settings: EmailSettings, runtime: Runtime, sender: EmailSender | None = None,
          embedded: bool = False) -> ServiceParts:
    if sender is None:
        if not settings.smtp_url:
            raise SystemExit("SMTP_URL is not set (e.g. smtp://mailpit:1025)")
        try:
            config = parse_smtp_url(settings.smtp_url)
        except ValueError as exc:
            raise SystemExit(str(exc)) from exc
        personal = Personal(LinkSigner(link_key(settings.link_key, settings.data_dir, embedded)),
                            settings.resolved_public_url())
        sender = SmtpSender(config, pool_size=settings.smtp_pool_size, rate_per_second=settings.smtp_rate_per_second,
                            wire=WireFormat(personal=personal, dkim_key=dkim_key(settings)),
                            envelope_sender=verp_sender(settings, embedded))
    ledger = Ledger(runtime.engine, LEDGER, PARKED)
    background = list(bounce_intake(settings, runtime, embedded))
    policy = settings.retry_policy()
    retrier = Retrier(ledger, policy, SendEmail.model_validate_json,
                      lambda command, recipients: [m for m in Mail.each_of(command) if m.recipient_id in recipients],
                      lambda mails: deliver_many(mails, sender, ledger, runtime.bus, policy, settings.smtp_pool_size,
                                                 retrying=True))
    # As many sends in flight as connections: the repeat window after a crash is one message per connection.
    return ServiceParts(name="email", router=build_router(sender, ledger, runtime.bus, policy, settings.smtp_pool_size),
                        migrations=MIGRATIONS, on_stop=(sender.close,),
                        background=(retrier.run, retention_loop("email", ledger.purge, settings.retention_days),
                                    *background))


def verp_sender(settings: EmailSettings, embedded: bool) -> Callable[[Mail], str] | None:
    """Each mail's own envelope sender under the bounce domain (VERP), when one is configured."""
    if not settings.bounce_domain:
        return None
    key = link_key(settings.link_key, settings.data_dir, embedded)
    return lambda mail: verp_address(key, settings.bounce_domain, mail.command.event_id, mail.recipient.id)


def bounce_intake(settings: EmailSettings, runtime: Runtime,
                  embedded: bool) -> Iterator[Callable[[], Awaitable[None]]]:
    """The ways bounces come in: an inbound SMTP port, a mailbox directory (neither without a bounce domain)."""
    if not settings.bounce_domain:
        if settings.bounce_smtp_port or settings.bounce_mailbox:
            raise SystemExit("BUDKAVLE_BOUNCE_DOMAIN is needed to take bounces in (mail is sent under it)")
        return
    intake = BounceIntake(link_key(settings.link_key, settings.data_dir, embedded), settings.bounce_domain,
                          runtime.engine, LEDGER, runtime.bus)
    if settings.bounce_smtp_port:
        yield partial(intake.serve_smtp, settings.bounce_smtp_host, settings.bounce_smtp_port)
    if settings.bounce_mailbox is not None:
        if not settings.bounce_mailbox.is_dir():
            raise SystemExit(f"BUDKAVLE_BOUNCE_MAILBOX {settings.bounce_mailbox}: not a directory")
        yield partial(intake.watch_mailbox, settings.bounce_mailbox)
