"""Run one service alone (`python -m services.<name>`) against KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.

`python -m services.<name> --check` builds the service from its settings and stops, connecting to nothing:
a deployment's configuration check (every variable the service requires, every value it refuses), exit 0 when
the service would start."""

import sys
from collections.abc import Callable

from services.common.logs import configure_logging
from services.common.runtime import Runtime, ServiceParts, serve
from services.common.settings import CommonSettings


def run_standalone(name: str, settings: CommonSettings, build: Callable[[Runtime], ServiceParts]) -> None:
    configure_logging(settings.log_level)
    runtime = Runtime.create(settings, client_id=f"budkavle-{name}", service=name)
    runtime.add(build(runtime))
    if "--check" in sys.argv[1:]:
        print(f"{name}: the configuration holds", flush=True)
        return
    serve(runtime.http_app(), settings.http_host, settings.http_port)
