"""Schema migrations with Alembic: one history per service, in `services/<name>/migrations`, with its own
version table (`alembic_version_<name>`), since each service owns its tables.

`python -m services.common.migrations revision <service> -m "what changed"` autogenerates the next
revision from the service's metadata.
"""

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine

SERVICES_DIR = Path(__file__).resolve().parent.parent


def _config(service: str, metadata: MetaData, connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.attributes.update(metadata=metadata, version_table=f"alembic_version_{service}", connection=connection)
    return cfg


async def upgrade(engine: AsyncEngine, service: str, metadata: MetaData) -> None:
    """Bring the service's tables to the newest revision."""
    def run(sync_connection: Any) -> None:
        command.upgrade(_config(service, metadata, sync_connection), "head")

    async with engine.begin() as conn:
        await conn.run_sync(run)


def run_env() -> None:
    """The body of every service's `migrations/env.py` (online mode, on the connection it is given)."""
    from alembic import context

    cfg = context.config
    context.configure(connection=cfg.attributes["connection"], target_metadata=cfg.attributes["metadata"],
                      version_table=cfg.attributes["version_table"], render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def service_metadata(service: str) -> MetaData:
    import importlib

    module = importlib.import_module(f"services.{service}.store")
    return module.metadata  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate the next revision of a service's tables")
    rev.add_argument("service", choices=("gateway", "tailor", "email", "teams", "intranet"))
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    metadata = service_metadata(args.service)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/rev.db")

        async def generate() -> None:
            await upgrade(engine, args.service, metadata)

            def revision(sync_connection: Any) -> None:
                command.revision(_config(args.service, metadata, sync_connection), message=args.message,
                                 autogenerate=True)

            async with engine.begin() as conn:
                await conn.run_sync(revision)
            await engine.dispose()

        asyncio.run(generate())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
