"""Each service's Alembic history builds exactly the tables its code declares, on SQLite and PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.migrations import service_metadata, upgrade

SERVICES = ("gateway", "tailor", "email", "teams", "intranet")


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(store_engine: AsyncEngine, service: str) -> None:
    metadata = service_metadata(service)
    await upgrade(store_engine, service, metadata)
    await upgrade(store_engine, service, metadata)  # a second start finds nothing to do

    def diff(sync_connection: object) -> list[object]:
        context = MigrationContext.configure(sync_connection, opts={  # type: ignore[arg-type]
            "compare_type": True, "version_table": f"alembic_version_{service}"})
        return list(compare_metadata(context, metadata))

    async with store_engine.connect() as conn:
        differences = await conn.run_sync(diff)
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert differences == []
    assert f"alembic_version_{service}" in tables
    assert set(metadata.tables) <= tables


async def test_services_share_one_database_without_touching_each_others_tables(store_engine: AsyncEngine) -> None:
    for service in SERVICES:
        await upgrade(store_engine, service, service_metadata(service))
    async with store_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    for service in SERVICES:
        assert {t for t in service_metadata(service).tables} <= tables
