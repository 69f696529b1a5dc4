"""Governance on SQLite and PostgreSQL: writers racing each other leave one unbroken register, and a row
changed, removed or inserted directly in the database is named by `verify` (and by `budkavle audit verify`);
two approvers racing on one event leave exactly one decision and one release."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from programs import Program, Role
from services.common.auth import Principal
from services.common.db import create_engine
from services.common.migrations import upgrade
from services.common.people import Person
from services.common.problems import Problem
from services.gateway.accept import AcceptEvent
from services.gateway.admission import Admitted
from services.gateway.approval import ApprovalIn, ApprovalReason, Approvals
from services.gateway.audit import AuditAction, AuditRegister, Entry
from services.gateway.store import MIGRATIONS, GatewayStore
from tests.conftest import ROOT, make_event


async def test_two_approvers_racing_on_one_event_leave_exactly_one_decision(store_engine: AsyncEngine,
                                                                             fvm: Program) -> None:
    await upgrade(store_engine, MIGRATIONS)
    store = GatewayStore(store_engine)
    accept = AcceptEvent(store, lambda: None)
    event = make_event(importance="must_know", audiences=["politisk-styrgrupp"])
    author = Principal.of_person(Person("redaktor@fvm.example", "Redaktör", {"fvm": frozenset({Role.EDITOR})}))
    reasons = [ApprovalReason(rule="importance", detail="must_know")]
    await accept(Admitted(event, "hash"), author, None, reasons)
    stored = await store.get(event.event_id)
    assert stored is not None and stored.content_hash is not None
    approvals = Approvals(store, {"fvm": fvm}, lambda: None)

    async def decide(sub: str, verdict: str) -> str:
        approver = Principal.of_person(Person(sub, sub, {"fvm": frozenset({Role.APPROVER})}))
        try:
            return str(await approvals.decide(stored, approver, ApprovalIn(
                decision=verdict, content_hash=stored.content_hash, comment="Ok." if verdict == "approve" else "Nej.")))
        except Problem as problem:
            return f"{problem.status}"

    results = await asyncio.gather(*(decide(f"godkannare-{n}@fvm.example", ("approve", "reject")[n % 2])
                                     for n in range(6)))
    assert sorted(results).count("409") == 5, results
    history = await approvals.history(str(event.event_id))
    assert [d.action for d in history].count("submit") == 1 and len(history) == 2
    async with store_engine.connect() as conn:
        outbox_rows = (await conn.execute(text("SELECT count(*) FROM gateway_outbox"))).scalar()
        register = (await conn.execute(text("SELECT action FROM gateway_audit ORDER BY seq"))).scalars().all()
    assert outbox_rows == (1 if history[-1].action == "approve" else 0)
    assert register == ["submit", history[-1].action]
    assert await AuditRegister(store_engine).verify() == (2, None)


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
