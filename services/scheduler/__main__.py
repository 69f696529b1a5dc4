"""`python -m services.scheduler`: the scheduler alone (one replica leads; the others wait to take over)."""

from services.common.standalone import run_standalone
from services.scheduler.main import SchedulerSettings, build

settings = SchedulerSettings()
run_standalone("scheduler", settings, lambda runtime: build(settings, runtime))
