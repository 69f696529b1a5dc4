"""`python -m services.embedded.migrations revision <service> -m "what changed"`: autogenerate the next
revision of one service's tables (every service's history is listed in `platform.MIGRATIONS`).

`python -m services.embedded.migrations upgrade [service …]`: bring services' tables (all when none is named)
to their newest revision in DATABASE_URL; Kubernetes runs it as each Deployment's init container. A service
also upgrades its own tables at start, so this is an ordering aid, never the only way."""

import argparse
import asyncio
import sys

from services.common.db import create_engine
from services.common.migrations import autogenerate_revision, upgrade
from services.common.settings import CommonSettings
from services.embedded.platform import MIGRATIONS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.embedded.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate the next revision of a service's tables")
    rev.add_argument("service", choices=sorted(MIGRATIONS))
    rev.add_argument("-m", "--message", required=True)
    up = sub.add_parser("upgrade", help="bring services' tables to their newest revision (DATABASE_URL)")
    up.add_argument("services", nargs="*", choices=[[], *sorted(MIGRATIONS)], metavar="service")
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        asyncio.run(upgrade_all(args.services or sorted(MIGRATIONS)))
        return 0
    asyncio.run(autogenerate_revision(MIGRATIONS[args.service], args.message))
    return 0


async def upgrade_all(services: list[str]) -> None:
    settings = CommonSettings()
    for name in services:
        engine = create_engine(settings.resolved_database_url(name))
        try:
            await upgrade(engine, MIGRATIONS[name])
        finally:
            await engine.dispose()
        print(f"{name}: tables at the newest revision", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
