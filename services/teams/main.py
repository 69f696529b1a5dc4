"""Composition root of the Teams channel."""

import logging
import os
from collections.abc import Mapping

import httpx
from pydantic import Field

from contracts.deliveries import SendTeamsCard
from programs import load_programs
from services.common.delivery import Delivery, deliver_many
from services.common.ledger import Ledger
from services.common.retention import retention_loop
from services.common.retry import Retrier
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.teams.handlers import build_router
from services.teams.limits import WebhookLimiter
from services.teams.sender import resolve_webhooks
from services.teams.store import LEDGER, MIGRATIONS, PARKED, POSTS
from services.teams.webhook import DEFAULT_ALLOWED_HOSTS, WorkflowsWebhook

log = logging.getLogger(__name__)


class TeamsSettings(CommonSettings):
    allowed_hosts: str = Field(default=",".join(DEFAULT_ALLOWED_HOSTS), alias="BUDKAVLE_TEAMS_ALLOWED_HOSTS")
    allow_loopback_http: bool = Field(default=False, alias="BUDKAVLE_TEAMS_ALLOW_LOOPBACK")
    #: The local Teams sink (embedded mode): groups without a webhook of their own post there.
    sink_url: str = Field(default="", alias="BUDKAVLE_TEAMS_SINK_URL")


def build(settings: TeamsSettings, runtime: Runtime, transport: httpx.AsyncBaseTransport | None = None,
          environ: Mapping[str, str] = os.environ) -> ServiceParts:
    """`environ` holds the webhook secrets, under the names the programme files give (`teams_webhook_env`)."""
    programs = load_programs(settings.programs_dir)
    webhooks = resolve_webhooks(programs, environ, settings.sink_url or None)
    missing = [f"{p.program}/{a.id}" for p in programs.values() for a in p.audiences
               if "teams" in a.channels and (p.program, a.id) not in webhooks]
    if missing:
        log.warning("Teams groups without a webhook: their cards fail with that reason until one is set",
                    extra={"groups": missing})
    client = httpx.AsyncClient(timeout=httpx.Timeout(15.0), transport=transport)
    allowed = tuple(h.strip().lower().lstrip(".") for h in settings.allowed_hosts.split(",") if h.strip())
    sender = WorkflowsWebhook(client, webhooks, WebhookLimiter(runtime.engine, POSTS), allowed,
                              settings.allow_loopback_http)
    ledger = Ledger(runtime.engine, LEDGER, PARKED)
    policy = settings.retry_policy()
    retrier = Retrier(ledger, policy, SendTeamsCard.model_validate_json, lambda command, _: [Delivery(command, None)],
                      lambda cards: deliver_many(cards, sender, ledger, runtime.bus, policy, retrying=True))
    return ServiceParts(name="teams", router=build_router(sender, ledger, runtime.bus, policy),
                        migrations=MIGRATIONS, on_stop=(client.aclose,),
                        background=(retrier.run, retention_loop("teams", ledger.purge, settings.retention_days)))
