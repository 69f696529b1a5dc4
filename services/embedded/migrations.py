"""`python -m services.embedded.migrations revision <service> -m "what changed"`: autogenerate the next
revision of one service's tables (every service's history is listed in `platform.MIGRATIONS`).

`python -m services.embedded.migrations upgrade [service …]`: bring services' tables (all when none is named)
to their newest revision in DATABASE_URL; Kubernetes runs it as each Deployment's init container, and
`budkavle up` in a process of its own before its services start. A named service's history is read from its
store module alone, so the process imports neither the service nor any other. A service also upgrades its
own tables at start, so this is an ordering aid, never the only way."""

import argparse
import asyncio
import importlib
import sys

from services.common.db import create_engine
from services.common.migrations import Migrations, autogenerate_revision, upgrade
from services.common.settings import CommonSettings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.embedded.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate the next revision of a service's tables")
    rev.add_argument("service")
    rev.add_argument("-m", "--message", required=True)
    up = sub.add_parser("upgrade", help="bring services' tables to their newest revision (DATABASE_URL)")
    up.add_argument("services", nargs="*", metavar="service")
    args = parser.parse_args(argv)
    named = [args.service] if args.command == "revision" else args.services
    try:
        histories = history_of(named or all_services())
    except LookupError as error:
        parser.error(str(error))
    if args.command == "upgrade":
        asyncio.run(upgrade_all(histories))
        return 0
    asyncio.run(autogenerate_revision(histories[args.service], args.message))
    return 0


def all_services() -> list[str]:
    from services.embedded.platform import SERVICE_NAMES  # every service: only when none is named

    return sorted(SERVICE_NAMES)


def history_of(services: list[str]) -> dict[str, Migrations]:
    """Each service's Alembic history, from its store module (`MIGRATIONS`); LookupError for a name that is
    no service with tables."""
    histories = {}
    for name in services:
        try:
            store = importlib.import_module(f"services.{name}.store") if name.isidentifier() else None
        except ModuleNotFoundError:
            store = None
        found = getattr(store, "MIGRATIONS", None)
        if not isinstance(found, Migrations):
            raise LookupError(f"no service {name!r} with tables (services: {', '.join(all_services())})")
        histories[name] = found
    return histories


async def upgrade_all(histories: dict[str, Migrations]) -> None:
    settings = CommonSettings()
    for name, migrations in histories.items():
        engine = create_engine(settings.resolved_database_url(name))
        try:
            await upgrade(engine, migrations)
        finally:
            await engine.dispose()
        print(f"{name}: tables at the newest revision", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
