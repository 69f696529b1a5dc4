"""Each service's Alembic history builds exactly the tables its code declares, on SQLite and PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.migrations import upgrade
from services.embedded.platform import MIGRATIONS


@pytest.mark.parametrize("service", sorted(MIGRATIONS))
async def test_each_services_history_builds_exactly_its_models_and_a_second_start_changes_nothing(
        store_engine: AsyncEngine, service: str) -> None:
    migrations = MIGRATIONS[service]
    await upgrade(store_engine, migrations)
    await upgrade(store_engine, migrations)

    def diff(sync_connection: object) -> list[object]:
        context = MigrationContext.configure(sync_connection, opts={  # type: ignore[arg-type]
            "compare_type": True, "version_table": f"alembic_version_{service}"})
        return list(compare_metadata(context, migrations.metadata))

    async with store_engine.connect() as conn:
        differences = await conn.run_sync(diff)
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert differences == []
    assert f"alembic_version_{service}" in tables
    assert set(migrations.metadata.tables) <= tables


async def test_services_share_one_database_without_touching_each_others_tables(store_engine: AsyncEngine) -> None:
    for migrations in MIGRATIONS.values():
        await upgrade(store_engine, migrations)
    async with store_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    owners = [name for m in MIGRATIONS.values() for name in m.metadata.tables]
    assert len(owners) == len(set(owners))  # no table belongs to two services
    assert set(owners) <= tables
