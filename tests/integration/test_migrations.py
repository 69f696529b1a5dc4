"""Each service's Alembic history builds exactly the tables its code declares, on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
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


async def test_intranet_items_stored_before_version_3_get_their_go_live_facts_and_phase_typed(
        store_engine: AsyncEngine) -> None:
    """Items kept before the intranet command carried typed facts are filled from their labels, once, so the
    status page's timeline and phase stay as they were."""
    migrations = MIGRATIONS["intranet"]
    async with store_engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(migrations.config(c), "dd4e13082f0e"))
        for event_id, kind, facts, day in (
                ("g1", "golive.milestone", '{"Typ": "Införande", "Område": "södra", "Våg": "Våg 1", '
                                           '"Status": "Införandet har startat"}', "2024-10-01"),
                ("s1", "status.update", '{"Typ": "Lägesrapport", "Fas": "Införande"}', None),
                ("d1", "steering.decision", '{"Typ": "Styrgruppsbeslut"}', None)):
            await conn.execute(text(
                "INSERT INTO intranet_items (event_id, program, event_type, title, summary, html_body, importance, "
                "sensitivity, facts, timeline_date, occurred_at, published_at) VALUES (:id, 'fvm', :kind, 't', 's', "
                "'<p>h</p>', 'awareness', 'internal', :facts, :day, :at, :at)"),
                {"id": event_id, "kind": kind, "facts": facts, "day": None if day is None else date.fromisoformat(day),
                 "at": datetime(2024, 9, 1, 8, 0, tzinfo=UTC)})
    await upgrade(store_engine, migrations)
    async with store_engine.connect() as conn:
        rows = {r.event_id: r for r in (await conn.execute(text(
            "SELECT event_id, area, wave, golive_state, phase FROM intranet_items"))).all()}
    assert (rows["g1"].area, rows["g1"].wave, rows["g1"].golive_state, rows["g1"].phase) == (
        "södra", "Våg 1", "started", None)
    assert (rows["s1"].area, rows["s1"].phase) == (None, "Införande")
    assert (rows["d1"].area, rows["d1"].golive_state, rows["d1"].phase) == (None, None, None)


async def test_outcomes_kept_per_person_before_version_4_become_counts_and_every_figure_stays(
        store_engine: AsyncEngine) -> None:
    """The gateway's and insights' per-person outcome rows are folded into their counts by the upgrade: an
    event's status and its follow-up figures read as before, and the gateway still names who failed."""
    from services.insights.store import InsightsStore

    at = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    people = [(f"p{i}", status) for i, status in enumerate(("sent", "sent", "sent", "failed", "deferred"))]
    gateway, insights = MIGRATIONS["gateway"], MIGRATIONS["insights"]
    async with store_engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(gateway.config(c), "8e15bcb2b4f0"))
        await conn.run_sync(lambda c: command.upgrade(insights.config(c), "bbc6e5b88675"))
        for recipient, status in people:
            await conn.execute(text(
                "INSERT INTO gateway_outcomes (event_id, channel, audience_id, recipient_key, status, reason, at) "
                "VALUES ('e1', 'email', 'g', :r, :s, :reason, :at)"),
                {"r": recipient, "s": status, "reason": None if status == "sent" else "550 nej", "at": at})
            await conn.execute(text(
                "INSERT INTO insights_deliveries (event_id, audience_id, channel, recipient, status, at) "
                "VALUES ('e1', 'g', 'email', :r, :s, :at)"), {"r": recipient, "s": status, "at": at})
        await conn.execute(text("INSERT INTO gateway_outcome_counts (event_id, audience_id, channel, status, count) "
                                "VALUES ('e1', 'g', 'email', 'sent', 10)"))  # folded by the retention before
    await upgrade(store_engine, gateway)
    await upgrade(store_engine, insights)
    async with store_engine.connect() as conn:
        counts = {(r[0], r[1]): r[2] for r in (await conn.execute(text(
            "SELECT status, channel, count FROM gateway_outcome_counts WHERE event_id = 'e1'"))).all()}
        named = (await conn.execute(text("SELECT recipient_key, status FROM gateway_unsent"))).all()
    assert counts == {("sent", "email"): 13, ("failed", "email"): 1}
    assert [tuple(r) for r in named] == [("p3", "failed")]
    assert (await InsightsStore(store_engine).counts(["e1"]))[("e1", "g")] == {"sent:email": 3, "failed:email": 1}
