"""Schema migrations with Alembic: one history per service, in the service's own `migrations/` folder, with
its own version table (`alembic_version_<name>`), since each service owns its tables.

A service registers its history as a `Migrations` value (in its `store.py`) and hands it to the runtime
in its `ServiceParts`; nothing here knows which services exist. `python -m services.embedded.migrations
revision <service> -m "what changed"` autogenerates the next revision.
"""

import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine

if TYPE_CHECKING:
    from alembic.config import Config


@dataclass(frozen=True)
class Migrations:
    """One service's tables and the Alembic history that builds them."""

    service: str
    metadata: MetaData
    location: Path

    @classmethod
    def beside(cls, module_file: str, service: str, metadata: MetaData) -> "Migrations":
        """The history in the `migrations/` folder next to the module that declares the tables."""
        return cls(service, metadata, Path(module_file).resolve().parent / "migrations")

    def config(self, connection: Any = None) -> "Config":
        from alembic.config import Config  # Alembic is imported only by a process that migrates

        cfg = Config()
        cfg.set_main_option("script_location", str(self.location))
        cfg.attributes.update(metadata=self.metadata, version_table=f"alembic_version_{self.service}",
                              connection=connection)
        return cfg


async def upgrade(engine: AsyncEngine, migrations: Migrations) -> None:
    """Bring the service's tables to the newest revision. On PostgreSQL, replicas starting together take
    turns (a transaction-scoped advisory lock per service), so an upgrade runs once and the others find
    nothing to do."""
    from alembic import command

    def run(sync_connection: Any) -> None:
        command.upgrade(migrations.config(sync_connection), "head")

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            lock = zlib.crc32(f"budkavle-migrations:{migrations.service}".encode())
            await conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
        await conn.run_sync(run)


async def autogenerate_revision(migrations: Migrations, message: str) -> None:
    """Write the next revision: the difference between the history's head and the service's metadata."""
    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/rev.db")
        try:
            await upgrade(engine, migrations)

            def revision(sync_connection: Any) -> None:
                command.revision(migrations.config(sync_connection), message=message, autogenerate=True)

            async with engine.begin() as conn:
                await conn.run_sync(revision)
        finally:
            await engine.dispose()


def run_env() -> None:
    """The body of every service's `migrations/env.py` (online mode, on the connection it is given)."""
    from alembic import context

    cfg = context.config
    context.configure(connection=cfg.attributes["connection"], target_metadata=cfg.attributes["metadata"],
                      version_table=cfg.attributes["version_table"], render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
