"""`python -m services.gateway`: the gateway alone (dry runs ask BUDKAVLE_TAILOR_URL)."""

from services.common.standalone import run_standalone
from services.gateway.main import GatewaySettings, build

settings = GatewaySettings()
run_standalone("gateway", settings, lambda runtime: build(settings, runtime))
