"""Every service composed on one runtime: what `budkavle up` runs, and what the end-to-end tests start.

The embedded platform is the one place that knows every service: it builds each one's settings, hands
them over, and adds each one's parts to a shared runtime.
"""

import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.deliveries import DeliveryPlan
from contracts.directory import DirectoryApplied, DirectoryReport, UndeliverableAddress
from contracts.events import Event
from programs import load_programs
from services.common.bus import DependencyUnavailable
from services.common.migrations import Migrations
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.console.main import ConsoleSettings
from services.console.main import build as build_console
from services.console.store import MIGRATIONS as CONSOLE_MIGRATIONS
from services.email.main import EmailSettings
from services.email.main import build as build_email
from services.email.store import MIGRATIONS as EMAIL_MIGRATIONS
from services.embedded.children import ServiceApart
from services.gateway.api import GroupCounts, PlannerUnavailable, PreviewRefused
from services.gateway.directory import DirectoryApplier, DirectoryChecker, UndeliverableLister
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
from services.tailor.imports import UnknownImport
from services.tailor.main import TailorSettings
from services.tailor.main import build as build_tailor
from services.tailor.store import MIGRATIONS as TAILOR_MIGRATIONS
from services.tailor.store import TailorStore
from services.teams.main import TeamsSettings
from services.teams.main import build as build_teams
from services.teams.store import MIGRATIONS as TEAMS_MIGRATIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tailoring:
    """What the composition hands between services in one process: the tailor plans and previews for the
    gateway's dry runs (a service run apart asks over HTTP instead)."""

    plan: Callable[[Event, str], Awaitable[DeliveryPlan]]
    preview: Callable[[Event, str, str, str], Awaitable[dict[str, str]]]
    members: Callable[[str, str], Awaitable[GroupCounts]]
    directory: tuple[DirectoryChecker, DirectoryApplier]
    undeliverable: UndeliverableLister


@dataclass(frozen=True)
class Service:
    """One service as the embedded platform composes it: its name (its package under services/), its
    settings, its tables' history and how it is built on a shared runtime."""

    name: str
    settings: type[CommonSettings]
    migrations: Migrations
    build: Callable[[Any, Runtime, Tailoring], ServiceParts]
    #: Runs in a process of its own under `budkavle up` (services/embedded/children.py): it needs nothing
    #: in process from the tailor.
    runs_apart: bool = False


def _build_tailor_first(_settings: Any, _runtime: Runtime, _tailoring: Tailoring) -> ServiceParts:
    raise AssertionError("the tailor is built first, by build_platform, since the gateway needs it")


#: Every service, the one list the platform composes from; the import contracts (`make lint`) and the shape
#: test read it too (services/embedded/shape.py).
SERVICES: tuple[Service, ...] = (
    Service("tailor", TailorSettings, TAILOR_MIGRATIONS, _build_tailor_first),
    Service("gateway", GatewaySettings, GATEWAY_MIGRATIONS,
            lambda s, rt, t: build_gateway(s, rt, planner=t.plan, previewer=t.preview,
                                               counter=t.members, directory=t.directory, embedded=True,
                                               undeliverable=t.undeliverable)),
    Service("email", EmailSettings, EMAIL_MIGRATIONS, lambda s, rt, _t: build_email(s, rt, embedded=True),
            runs_apart=True),
    Service("teams", TeamsSettings, TEAMS_MIGRATIONS, lambda s, rt, _t: build_teams(s, rt)),
    Service("intranet", IntranetSettings, INTRANET_MIGRATIONS, lambda s, rt, _t: build_intranet(s, rt, embedded=True)),
    Service("scheduler", SchedulerSettings, SCHEDULER_MIGRATIONS, lambda s, rt, _t: build_scheduler(s, rt)),
    Service("preferences", PreferencesSettings, PREFERENCES_MIGRATIONS,
            lambda s, rt, _t: build_preferences(s, rt, embedded=True)),
    Service("insights", InsightsSettings, INSIGHTS_MIGRATIONS, lambda s, rt, _t: build_insights(s, rt, embedded=True)),
    Service("console", ConsoleSettings, CONSOLE_MIGRATIONS, lambda s, rt, _t: build_console(s, rt, embedded=True)),
)
SERVICE_NAMES = tuple(s.name for s in SERVICES)
#: Every service's tables and their Alembic history.
MIGRATIONS: dict[str, Migrations] = {s.name: s.migrations for s in SERVICES}


@dataclass(frozen=True)
class PlatformSettings:
    """Each service's settings, built once from the environment and what `budkavle up` decided."""

    by_service: dict[str, CommonSettings]

    @property
    def tailor(self) -> TailorSettings:
        settings = self.by_service["tailor"]
        assert isinstance(settings, TailorSettings)
        return settings

    @classmethod
    def load(cls, shared: dict[str, Any] | None = None, **per_service: dict[str, Any]) -> "PlatformSettings":
        """From the environment; `shared` values (field names, e.g. `kafka_bootstrap_servers`) go to every
        service and `per_service` ones (e.g. `email={"smtp_url": …}`) to one, both winning over the
        environment."""
        unknown = set(per_service) - set(SERVICE_NAMES)
        if unknown:
            raise ValueError(f"no services {sorted(unknown)}")
        return cls({s.name: s.settings(**{**(shared or {}), **per_service.get(s.name, {})}) for s in SERVICES})


def build_platform(settings: PlatformSettings, staff_scale: float = 1.0, apart: bool = False) -> Runtime:
    """Compose every service of SERVICES on one runtime, the tailor first; with `apart`, those that run apart
    each in a process of its own, which the runtime starts, restarts and stops."""
    runtime = Runtime.create(settings.tailor, client_id="budkavle", service="tailor")
    tailor_parts, tailor = build_tailor(settings.tailor, runtime, embedded=True)

    async def plan(event: Event, _authorization: str) -> DeliveryPlan:  # in process: the gateway checked the token
        try:
            return (await tailor.plan(event)).contract
        except DependencyUnavailable as exc:  # an amendment's original not planned yet
            raise PlannerUnavailable(str(exc)) from exc

    async def preview(event: Event, audience: str, channel: str, _authorization: str) -> dict[str, str]:
        try:
            return tailor.preview(event, audience, channel)
        except ValueError as exc:
            raise PreviewRefused(str(exc)) from exc

    async def members(program: str, _authorization: str) -> GroupCounts:
        return GroupCounts(await tailor.members(program), await tailor.undeliverable(program))

    async def check_directory(text: str, author: str, _authorization: str) -> DirectoryReport:
        return await tailor.imports.check(text, author)

    async def apply_directory(import_id: str, _authorization: str) -> DirectoryApplied | None:
        try:
            return await tailor.imports.apply(import_id)
        except UnknownImport:
            return None

    async def undeliverable(_authorization: str) -> list[UndeliverableAddress]:
        return [UndeliverableAddress(id=i, name=n, email=e, reason=r) for i, n, e, r in await tailor.bounces.listing()]

    async def seed_demo_directory() -> None:
        store = TailorStore(runtime.engine)
        if await store.directory_size() == 0:
            programs = load_programs(settings.tailor.programs_dir)
            municipalities = [(m.name, m.area, frozenset(m.options))
                              for p in programs.values() for m in p.municipalities]
            count = await store.replace_directory(synthetic_directory(municipalities, staff_scale))
            log.info("demo directory created", extra={"recipients": count})

    tailor_parts.on_start = (seed_demo_directory, *tailor_parts.on_start)
    running_apart = [s for s in SERVICES if apart and s.runs_apart]
    for service in running_apart:  # first: their processes start while the others get ready
        parts = ServiceApart(service.name, settings.by_service[service.name],
                             settings.tailor.resolved_public_url()).parts()
        # Its tables are migrated before its process starts, by `budkavle up`'s migrating process (up.py), so
        # that neither process loads Alembic; its database is checked by /readyz here too.
        parts.engine = runtime.on_database(
            settings.by_service[service.name].resolved_database_url(service.name)).engine
        runtime.add(parts)
    runtime.add(tailor_parts)
    tailoring = Tailoring(plan, preview, members, (check_directory, apply_directory), undeliverable)
    for service in SERVICES:
        if service in running_apart:
            continue
        if service.name != "tailor":  # each on its own database (embedded: its own SQLite file)
            own = runtime.on_database(settings.by_service[service.name].resolved_database_url(service.name))
            parts = service.build(settings.by_service[service.name], own, tailoring)
            parts.engine = own.engine
            runtime.add(parts)
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
