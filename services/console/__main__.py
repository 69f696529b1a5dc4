"""`python -m services.console`: the console alone."""

from services.common.standalone import run_standalone
from services.console.main import ConsoleSettings, build

settings = ConsoleSettings()
run_standalone("console", settings, lambda runtime: build(settings, runtime))
