"""Every service composed on one runtime: what `budkavle up` runs, and what the end-to-end tests start.

The embedded platform is the one place that knows every service: it builds each one's settings, hands
them over, and adds each one's parts to a shared runtime.
"""

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.deliveries import DeliveryPlan
from contracts.events import Event
from programs import load_programs
from services.common.migrations import Migrations
from services.common.runtime import Runtime
from services.email.main import EmailSettings
from services.email.main import build as build_email
from services.email.store import MIGRATIONS as EMAIL_MIGRATIONS
from services.gateway.api import PreviewRefused
from services.gateway.main import GatewaySettings
from services.gateway.main import build as build_gateway
from services.gateway.store import MIGRATIONS as GATEWAY_MIGRATIONS
from services.insights.main import InsightsSettings
from services.insights.main import build as build_insights
from services.insights.store import MIGRATIONS as INSIGHTS_MIGRATIONS
from services.intranet.main import IntranetSettings
from services.intranet.main import build as build_intranet
from services.intranet.store import MIGRATIONS as INTRANET_MIGRATIONS
from services.preferences.main import PreferencesSettings
from services.preferences.main import build as build_preferences
from services.preferences.store import MIGRATIONS as PREFERENCES_MIGRATIONS
from services.scheduler.main import SchedulerSettings
from services.scheduler.main import build as build_scheduler
from services.scheduler.store import MIGRATIONS as SCHEDULER_MIGRATIONS
from services.tailor.directory import synthetic_directory
from services.tailor.main import TailorSettings
from services.tailor.main import build as build_tailor
from services.tailor.store import MIGRATIONS as TAILOR_MIGRATIONS
from services.tailor.store import TailorStore
from services.teams.main import TeamsSettings
from services.teams.main import build as build_teams
from services.teams.store import MIGRATIONS as TEAMS_MIGRATIONS

log = logging.getLogger(__name__)

#: Every service's tables and their Alembic history.
MIGRATIONS: dict[str, Migrations] = {m.service: m for m in (
    GATEWAY_MIGRATIONS, TAILOR_MIGRATIONS, EMAIL_MIGRATIONS, TEAMS_MIGRATIONS, INTRANET_MIGRATIONS,
    SCHEDULER_MIGRATIONS, PREFERENCES_MIGRATIONS, INSIGHTS_MIGRATIONS)}
SERVICES = ("gateway", "tailor", "email", "teams", "intranet", "scheduler", "preferences", "insights")


@dataclass(frozen=True)
class PlatformSettings:
    """Each service's settings, built once from the environment and what `budkavle up` decided."""

    gateway: GatewaySettings
    tailor: TailorSettings
    email: EmailSettings
    teams: TeamsSettings
    intranet: IntranetSettings
    scheduler: SchedulerSettings
    preferences: PreferencesSettings
    insights: InsightsSettings

    @classmethod
    def load(cls, shared: dict[str, Any] | None = None, **per_service: dict[str, Any]) -> "PlatformSettings":
        """From the environment; `shared` values (field names, e.g. `kafka_bootstrap_servers`) go to every
        service and `per_service` ones (e.g. `email={"smtp_url": …}`) to one, both winning over the
        environment."""
        unknown = set(per_service) - set(SERVICES)
        if unknown:
            raise ValueError(f"no services {sorted(unknown)}")

        def make(name: str, settings_class: type[Any]) -> Any:
            return settings_class(**{**(shared or {}), **per_service.get(name, {})})

        return cls(gateway=make("gateway", GatewaySettings), tailor=make("tailor", TailorSettings),
                   email=make("email", EmailSettings), teams=make("teams", TeamsSettings),
                   intranet=make("intranet", IntranetSettings), scheduler=make("scheduler", SchedulerSettings),
                   preferences=make("preferences", PreferencesSettings),
                   insights=make("insights", InsightsSettings))


def build_platform(settings: PlatformSettings, staff_scale: float = 1.0) -> Runtime:
    """Compose every service (gateway, tailor, email, teams, intranet, scheduler, preferences, insights) on one
    runtime."""
    runtime = Runtime.create(settings.tailor, client_id="budkavle")
    tailor_parts, tailor = build_tailor(settings.tailor, runtime, embedded=True)

    async def plan(event: Event, _authorization: str) -> DeliveryPlan:  # in process: the gateway checked the token
        return (await tailor.plan(event)).contract

    async def preview(event: Event, audience: str, channel: str, _authorization: str) -> dict[str, str]:
        try:
            return tailor.preview(event, audience, channel)
        except ValueError as exc:
            raise PreviewRefused(str(exc)) from exc

    async def seed_demo_directory() -> None:
        store = TailorStore(runtime.engine)
        if await store.directory_size() == 0:
            programs = load_programs(settings.tailor.programs_dir)
            municipalities = [(m.name, m.area, frozenset(m.options))
                              for p in programs.values() for m in p.municipalities]
            count = await store.replace_directory(synthetic_directory(municipalities, staff_scale))
            log.info("demo directory created", extra={"recipients": count})

    tailor_parts.on_start = (seed_demo_directory, *tailor_parts.on_start)
    runtime.add(tailor_parts)
    runtime.add(build_gateway(settings.gateway, runtime, planner=plan, previewer=preview))
    runtime.add(build_email(settings.email, runtime, embedded=True))
    runtime.add(build_teams(settings.teams, runtime))
    runtime.add(build_intranet(settings.intranet, runtime, embedded=True))
    runtime.add(build_scheduler(settings.scheduler, runtime))
    runtime.add(build_preferences(settings.preferences, runtime, embedded=True))
    runtime.add(build_insights(settings.insights, runtime, embedded=True))
    return runtime


def write_runtime_file(data_dir: Path, bootstrap: str, port: int, url: str) -> Path:
    path = data_dir / "runtime.json"
    path.write_text(json.dumps({"kafka_bootstrap_servers": bootstrap, "http_port": port, "url": url,
                                "pid": os.getpid()}))
    return path


def read_runtime_file(data_dir: Path) -> dict[str, object] | None:
    path = data_dir / "runtime.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
