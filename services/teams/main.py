"""Composition root of the Teams channel."""

import httpx
from pydantic import Field

from services.common.delivery import Ledger
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.teams.handlers import build_router
from services.teams.store import LEDGER, metadata
from services.teams.webhook import DEFAULT_ALLOWED_HOSTS, TeamsSender


class TeamsSettings(CommonSettings):
    allowed_hosts: str = Field(default=",".join(DEFAULT_ALLOWED_HOSTS), alias="BUDKAVLE_TEAMS_ALLOWED_HOSTS")
    allow_loopback_http: bool = Field(default=False, alias="BUDKAVLE_TEAMS_ALLOW_LOOPBACK")


def build(settings: TeamsSettings, runtime: Runtime, transport: httpx.AsyncBaseTransport | None = None
          ) -> ServiceParts:
    client = httpx.AsyncClient(timeout=httpx.Timeout(15.0), transport=transport)
    allowed = tuple(h.strip().lower().lstrip(".") for h in settings.allowed_hosts.split(",") if h.strip())
    sender = TeamsSender(client, allowed, settings.allow_loopback_http)
    ledger = Ledger(runtime.engine, LEDGER)
    return ServiceParts(name="teams", router=build_router(sender.send, ledger, runtime.bus),
                        metadata=metadata, on_stop=(client.aclose,))
