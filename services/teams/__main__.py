"""`python -m services.teams`: the teams service alone."""

from services.common.standalone import run_standalone
from services.teams.main import TeamsSettings, build

settings = TeamsSettings()
run_standalone("teams", settings, lambda runtime: build(settings, runtime))
