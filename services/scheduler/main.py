"""Composition root of the scheduler."""

from pydantic import Field

from programs import load_programs
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.scheduler.handlers import build_router
from services.scheduler.leader import LeaderLock
from services.scheduler.service import Scheduler
from services.scheduler.store import MIGRATIONS, SchedulerStore


class SchedulerSettings(CommonSettings):
    lock_poll_seconds: float = Field(default=2.0, alias="BUDKAVLE_SCHEDULER_LOCK_POLL", gt=0, le=60)
    sweep_seconds: float = Field(default=60.0, alias="BUDKAVLE_SCHEDULER_SWEEP", gt=0, le=3600)
    #: After downtime, the missed digest periods said per target group and cadence (the newest ones).
    catch_up: int = Field(default=4, alias="BUDKAVLE_SCHEDULER_CATCH_UP", ge=0, le=52)


def build(settings: SchedulerSettings, runtime: Runtime) -> ServiceParts:
    programs = load_programs(settings.programs_dir)
    scheduler = Scheduler(programs, SchedulerStore(runtime.engine), runtime.bus,
                          LeaderLock(runtime.engine, poll_seconds=settings.lock_poll_seconds),
                          sweep_seconds=settings.sweep_seconds, catch_up=settings.catch_up)

    async def stop() -> None:
        scheduler.stop()

    return ServiceParts(name="scheduler", router=build_router(scheduler, runtime.bus), migrations=MIGRATIONS,
                        background=(scheduler.run,), on_stop=(stop,))
