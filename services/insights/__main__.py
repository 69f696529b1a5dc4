"""`python -m services.insights`: the follow-up service alone."""

from services.common.standalone import run_standalone
from services.insights.main import InsightsSettings, build

settings = InsightsSettings()
run_standalone("insights", settings, lambda runtime: build(settings, runtime))
