"""`python -m services.preferences`: the preference centre alone."""

from services.common.standalone import run_standalone
from services.preferences.main import PreferencesSettings, build

settings = PreferencesSettings()
run_standalone("preferences", settings, lambda runtime: build(settings, runtime))
