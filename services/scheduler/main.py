"""Composition root of the scheduler."""

from pydantic import Field
from sqlalchemy import create_engine

from programs import load_programs
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.scheduler.handlers import build_router
from services.scheduler.leader import LeaderLock
from services.scheduler.service import Scheduler
from services.scheduler.store import MIGRATIONS, SchedulerStore

_SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


class SchedulerSettings(CommonSettings):
    lock_poll_seconds: float = Field(default=2.0, alias="BUDKAVLE_SCHEDULER_LOCK_POLL", gt=0, le=60)
    sweep_seconds: float = Field(default=60.0, alias="BUDKAVLE_SCHEDULER_SWEEP", gt=0, le=3600)


def sync_database_url(url: str) -> str:
    """The same database for APScheduler's job store, which is synchronous SQLAlchemy."""
    scheme, sep, rest = url.partition("://")
    driver = _SYNC_DRIVERS.get(scheme, scheme)
    if "+" in driver and driver not in _SYNC_DRIVERS.values():
        raise SystemExit(f"DATABASE_URL: no synchronous driver known for {scheme!r} (the scheduler's job store "
                         f"needs one; use sqlite+aiosqlite or postgresql+asyncpg)")
    return f"{driver}{sep}{rest}"


def build(settings: SchedulerSettings, runtime: Runtime) -> ServiceParts:
    programs = load_programs(settings.programs_dir)
    jobs_engine = create_engine(sync_database_url(settings.resolved_database_url()), pool_pre_ping=True)
    scheduler = Scheduler(programs, SchedulerStore(runtime.engine), runtime.bus, jobs_engine,
                          LeaderLock(runtime.engine, poll_seconds=settings.lock_poll_seconds),
                          sweep_seconds=settings.sweep_seconds)

    async def stop() -> None:
        scheduler.stop()
        jobs_engine.dispose()

    return ServiceParts(name="scheduler", router=build_router(scheduler, runtime.bus), migrations=MIGRATIONS,
                        background=(scheduler.run,), on_stop=(stop,))
