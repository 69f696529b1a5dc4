"""The audit register on SQLite and PostgreSQL: writers racing each other leave one unbroken chain, and a row
changed, removed or inserted directly in the database is named by `verify` (and by `budkavle audit verify`)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine
from services.common.migrations import upgrade
from services.gateway.audit import AuditAction, AuditRegister, Entry
from services.gateway.store import MIGRATIONS
from tests.conftest import ROOT


def entry(n: int) -> Entry:
    return Entry(actor="redaktor@fvm.example", action=AuditAction.PUBLISH, program="fvm", target=f"event-{n}",
                 content_hash=f"{n:064x}", detail="design.decision")


async def test_racing_writers_leave_one_chain_and_tampering_is_named(store_engine: AsyncEngine) -> None:
    await upgrade(store_engine, MIGRATIONS)
    register = AuditRegister(store_engine)
    numbers = await asyncio.gather(*(register.append(entry(n)) for n in range(12)))
    assert sorted(numbers) == list(range(1, 13))
    assert await register.verify() == (12, None)

    async with store_engine.begin() as conn:
        await conn.execute(text("UPDATE gateway_audit SET actor = 'nagon-annan@fvm.example' WHERE seq = 5"))
    assert await register.verify() == (12, "row 5 was changed")


async def test_a_removed_or_inserted_row_is_named(store_engine: AsyncEngine) -> None:
    await upgrade(store_engine, MIGRATIONS)
    register = AuditRegister(store_engine)
    for n in range(6):
        await register.append(entry(n))
    async with store_engine.begin() as conn:
        await conn.execute(text("DELETE FROM gateway_audit WHERE seq = 6"))
    assert (await register.verify())[1] == "row 6 was removed (the register ends at row 5; its head says row 6)"
    async with store_engine.begin() as conn:
        await conn.execute(text("INSERT INTO gateway_audit SELECT 6, at, actor, action, program, 'forged', "
                                "content_hash, detail, hash, hash FROM gateway_audit WHERE seq = 5"))
        await conn.execute(text("INSERT INTO gateway_audit SELECT 7, at, actor, action, program, 'forged', "
                                "content_hash, detail, hash, hash FROM gateway_audit WHERE seq = 6"))
    assert (await register.verify())[1] == "row 6 was changed"
    async with store_engine.begin() as conn:
        await conn.execute(text("DELETE FROM gateway_audit WHERE seq = 3"))
    assert (await register.verify())[1] == "row 3 was removed (the register goes from row 2 to row 4)"


def test_budkavle_audit_verify_names_the_altered_row(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"

    async def fill() -> None:
        engine = create_engine(url)
        await upgrade(engine, MIGRATIONS)
        for n in range(4):
            await AuditRegister(engine).append(entry(n))
        await engine.dispose()

    asyncio.run(fill())

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "audit", "verify"], cwd=ROOT, text=True,
                              env={**os.environ, "DATABASE_URL": url}, capture_output=True, timeout=60)

    whole = verify()
    assert whole.returncode == 0 and "4 rows" in whole.stdout, whole.stderr

    async def alter() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE gateway_audit SET target = 'event-x' WHERE seq = 2"))
        await engine.dispose()

    asyncio.run(alter())
    altered = verify()
    assert altered.returncode == 1 and "row 2 was changed" in altered.stderr
