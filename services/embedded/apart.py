"""`python -m services.embedded.apart <service>`: one service of the embedded platform in a process of its own.

`budkavle up` starts it (services/embedded/children.py) with the settings it decided in the environment;
the service is built exactly as in the shared process (embedded mode: keys kept in the data directory), on
its own database file, and serves its health and metrics on its own loopback port.
"""

import sys

from services.common.logs import configure_logging
from services.common.runtime import Runtime, serve
from services.embedded.platform import SERVICES, Tailoring


def main(argv: list[str]) -> int:
    apart = {s.name: s for s in SERVICES if s.runs_apart}
    if len(argv) != 1 or argv[0] not in apart:
        print(f"usage: python -m services.embedded.apart {{{','.join(sorted(apart))}}}", file=sys.stderr)
        return 2
    service = apart[argv[0]]
    settings = service.settings()
    configure_logging(settings.log_level)
    runtime = Runtime.create(settings, client_id=f"budkavle-{service.name}", service=service.name)
    runtime.add(service.build(settings, runtime, NO_TAILORING))
    serve(runtime.http_app(), settings.http_host, settings.http_port)
    return 0


async def _no_tailor(*_: object) -> object:
    raise AssertionError("a service run apart does not ask the tailor in process")


#: A service that runs apart needs nothing from the tailor in process (`Service.runs_apart`).
NO_TAILORING = Tailoring(_no_tailor, _no_tailor, _no_tailor, (_no_tailor, _no_tailor))  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
