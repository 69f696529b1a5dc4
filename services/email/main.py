"""Composition root of the email channel."""

from pydantic import Field

from services.common.delivery import Ledger
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.email.handlers import build_router
from services.email.sender import EmailSender
from services.email.smtp import SmtpSender, parse_smtp_url
from services.email.store import LEDGER, MIGRATIONS


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
    ledger = Ledger(runtime.engine, LEDGER)
    return ServiceParts(name="email", router=build_router(sender, ledger, runtime.bus),
                        migrations=MIGRATIONS, on_stop=(sender.close,))
