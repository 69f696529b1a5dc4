"""`python -m services.intranet`: the intranet service alone."""

from services.common.standalone import run_standalone
from services.intranet.main import IntranetSettings, build

settings = IntranetSettings()
run_standalone("intranet", settings, lambda runtime: build(settings, runtime))
