"""Composition root of the email channel."""

from pydantic import Field

from contracts.deliveries import SendEmail
from services.common.delivery import deliver_many
from services.common.ledger import Ledger
from services.common.retry import Retrier
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.email.handlers import build_router
from services.email.sender import EmailSender, Mail
from services.email.smtp import SmtpSender, parse_smtp_url
from services.email.store import LEDGER, MIGRATIONS, PARKED


class EmailSettings(CommonSettings):
    smtp_url: str = Field(default="", alias="SMTP_URL")
    smtp_pool_size: int = Field(default=4, alias="BUDKAVLE_SMTP_POOL_SIZE", ge=1, le=64)
    smtp_rate_per_second: float = Field(default=0.0, alias="BUDKAVLE_SMTP_RATE", ge=0)


def build(settings: EmailSettings, runtime: Runtime, sender: EmailSender | None = None) -> ServiceParts:
    if sender is None:
        if not settings.smtp_url:
            raise SystemExit("SMTP_URL is not set (e.g. smtp://mailpit:1025)")
        try:
            config = parse_smtp_url(settings.smtp_url)
        except ValueError as exc:
            raise SystemExit(str(exc)) from exc
        sender = SmtpSender(config, pool_size=settings.smtp_pool_size, rate_per_second=settings.smtp_rate_per_second)
    ledger = Ledger(runtime.engine, LEDGER, PARKED)
    policy = settings.retry_policy()
    retrier = Retrier(ledger, policy, SendEmail.model_validate_json,
                      lambda command, recipients: [m for m in Mail.each_of(command) if m.recipient_id in recipients],
                      lambda mails: deliver_many(mails, sender, ledger, runtime.bus, policy, settings.smtp_pool_size,
                                                 retrying=True))
    # As many sends in flight as connections: the repeat window after a crash is one message per connection.
    return ServiceParts(name="email", router=build_router(sender, ledger, runtime.bus, policy, settings.smtp_pool_size),
                        migrations=MIGRATIONS, background=(retrier.run,), on_stop=(sender.close,))
