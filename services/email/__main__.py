"""`python -m services.email`: the email service alone."""

from services.common.standalone import run_standalone
from services.email.main import EmailSettings, build

settings = EmailSettings()
run_standalone("email", settings, lambda runtime: build(settings, runtime))
