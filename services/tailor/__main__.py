"""`python -m services.tailor`: the tailor alone."""

from services.common.standalone import run_standalone
from services.tailor.main import TailorSettings, build

settings = TailorSettings()
run_standalone("tailor", settings, lambda runtime: build(settings, runtime)[0])
