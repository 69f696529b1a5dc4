"""`python -m services.embedded.apart <service>`: one service of the embedded platform in a process of its own.

`budkavle up` starts it (services/embedded/children.py) with the settings it decided in the environment;
the service is built as in the shared process (embedded mode: keys kept in the data directory), on its own
database file (its tables migrated by `budkavle up` before it starts), and serves its health and metrics on
its own loopback port. Only that service's code is imported: the process carries no other service's modules,
nor Alembic.
"""

import importlib
import sys

from services.common.logs import configure_logging
from services.common.malloc import limit_malloc_arenas
from services.common.runtime import Runtime, serve

#: The services that may run apart (`Service.runs_apart` in platform.py): their composition root and the
#: name of its settings class; each root has `build(settings, runtime, embedded=True)`.
APART = {"email": ("services.email.main", "EmailSettings")}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in APART:
        print(f"usage: python -m services.embedded.apart {{{','.join(sorted(APART))}}}", file=sys.stderr)
        return 2
    limit_malloc_arenas()
    name = argv[0]
    module_name, settings_class = APART[name]
    root = importlib.import_module(module_name)
    settings = getattr(root, settings_class)()
    configure_logging(settings.log_level)
    runtime = Runtime.create(settings, client_id=f"budkavle-{name}", service=name)
    parts = root.build(settings, runtime, embedded=True)
    parts.migrations = None  # `budkavle up` migrated its tables before starting this process
    runtime.add(parts)
    # Health, readiness and metrics alone (Starlette): FastAPI would add some 6 MiB to the process for nothing.
    app = runtime.health_app() if parts.http is None else runtime.http_app()
    serve(app, settings.http_host, settings.http_port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
