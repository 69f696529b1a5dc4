"""The audit register: every write the gateway lets through, who made it, what it touched and when, in an
append-only table where each row holds the hash of the row before it.

A row's hash covers its own fields and the previous row's hash, and a head row holds the last number and hash;
so a row changed, inserted or removed directly in the database breaks the chain at that row, and `verify` names
it. The register keeps no personal data beyond the actor's subject (a person's `sub`, or a token's handle:
never the token). Retention never deletes it.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.events import PROGRAM_PATTERN, Event
from services.common.auth import Principal, TokenRole
from services.common.problems import Problem, only_declared_query, problem_responses
from services.gateway.store import metadata

#: The hash the first row follows.
GENESIS = "0" * 64


class AuditAction(StrEnum):
    SUBMIT = "submit"  # an event held for approval, submitted or changed (a change voids earlier decisions)
    APPROVE = "approve"  # approved by a second person: released
    REJECT = "reject"
    CANCEL = "cancel"  # a held event withdrawn: nothing of it is sent
    PUBLISH = "publish"  # an event accepted to go out now
    CORRECT = "correct"  # a correction of an earlier event accepted to go out (the detail names the original)
    RETRACT = "retract"  # an earlier event withdrawn
    SCHEDULE = "schedule"  # an event accepted to go out at its embargo's end or send time
    REDRIVE = "redrive"  # a dead letter sent again
    DIRECTORY_IMPORT = "directory_import"  # the directory replaced by a checked file


audit = Table(
    "gateway_audit", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),  # ISO 8601 text: the hash covers exactly what is stored
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("program", String(32), nullable=True, index=True),
    Column("target", String(100), nullable=False),
    Column("content_hash", String(64), nullable=True),
    Column("detail", String(500), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
#: The register's last row (number and hash): removing the last rows, or adding one behind the gateway's back,
#: shows against it.
audit_head = Table(
    "gateway_audit_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("hash", String(64), nullable=False),
)

FIELDS = ("seq", "at", "actor", "action", "program", "target", "content_hash", "detail", "prev_hash")


@dataclass(frozen=True)
class Entry:
    actor: str
    action: AuditAction
    program: str | None
    target: str
    content_hash: str | None = None
    detail: str = ""


class AuditRow(BaseModel):
    seq: int
    at: str = Field(description="when, ISO 8601 in UTC")
    actor: str = Field(description="a person's subject, or a token's handle (sha256:…), never the token")
    action: str
    program: str | None
    target: str = Field(description="what the action touched: an event id, a dead letter's id, an import id")
    content_hash: str | None = Field(description="SHA-256 of the event's canonical content, where there is one")
    detail: str
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    rows: list[AuditRow] = Field(description="oldest first")


def content_hash(event: Event) -> str:
    """SHA-256 of the event's content as the publisher wrote it: canonical JSON, without what the gateway
    stamps on it (its publication time)."""
    content = event.model_dump(mode="json", exclude={"published_at"})
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


def row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps([row[f] for f in FIELDS], ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


async def append(conn: AsyncConnection, entry: Entry, now: datetime | None = None) -> int:
    """Add `entry` to the register within the caller's transaction; returns its number. Concurrent writers (two
    gateways, or two requests) take turns: the head row is written first, which locks it (PostgreSQL: the row;
    SQLite: the database, before anything is read, so that no two readers both wait to write)."""
    await conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq))
    head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
    if head is None:
        await conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head.seq + 1, head.hash
    row: dict[str, Any] = {"seq": seq, "at": (now or datetime.now(UTC)).isoformat(), "actor": entry.actor,
                           "action": entry.action.value, "program": entry.program, "target": entry.target,
                           "content_hash": entry.content_hash, "detail": entry.detail[:500], "prev_hash": prev}
    row["hash"] = row_hash(row)
    await conn.execute(insert(audit).values(**row))
    await conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=row["hash"]))
    return seq


def verify(rows: Iterable[Mapping[str, Any]], head: Mapping[str, Any] | None) -> str | None:
    """None when the register is whole; otherwise what is wrong, naming the first row that was changed,
    inserted or removed. `rows` in order of their numbers."""
    expected_seq, expected_prev = 1, GENESIS
    for row in rows:
        if row["seq"] != expected_seq:
            return (f"row {expected_seq} was removed (the register goes from row {expected_seq - 1} to row "
                    f"{row['seq']})")
        if row["prev_hash"] != expected_prev:
            return (f"row {row['seq']} does not follow row {row['seq'] - 1}: one of them was changed, or a row "
                    "inserted or removed between them")
        if row_hash(row) != row["hash"]:
            return f"row {row['seq']} was changed"
        expected_seq, expected_prev = expected_seq + 1, row["hash"]
    last = expected_seq - 1
    head_seq, head_hash = (head["seq"], head["hash"]) if head is not None else (0, GENESIS)
    if head_seq > last:
        return f"row {last + 1} was removed (the register ends at row {last}; its head says row {head_seq})"
    if head_seq < last:
        return f"row {head_seq + 1} was inserted (the register's head says it ends at row {head_seq})"
    if head_hash != expected_prev:
        return f"row {last} was changed (its hash is not the one the register's head keeps)"
    return None


class AuditRegister:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(self, entry: Entry) -> int:
        async with self.engine.begin() as conn:
            return await append(conn, entry)

    async def rows(self, programs: Iterable[str] | None = None, limit: int | None = None) -> list[AuditRow]:
        """The register's rows, oldest first: of those programmes (rows of no programme too when None)."""
        query = select(audit).order_by(audit.c.seq)
        if programs is not None:
            query = query.where(audit.c.program.in_(sorted(programs)))
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            return [AuditRow(**row) for row in (await conn.execute(query)).mappings().all()]

    async def verify(self) -> tuple[int, str | None]:
        """How many rows the register holds, and what is wrong with it (None: nothing)."""
        async with self.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(select(audit).order_by(audit.c.seq))).mappings().all()]
            head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).mappings().first()
        return len(rows), verify(rows, None if head is None else dict(head))


CSV_COLUMNS = ("seq", "at", "actor", "action", "program", "target", "content_hash", "detail", "prev_hash", "hash")


def as_csv(rows: Iterable[AuditRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = row.model_dump()
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()


def build_http(register: AuditRegister, programs: Iterable[str], caller_dependency: Any) -> APIRouter:
    """`GET /v1/audit`: the register, for an admin of the programme asked for (of every programme, to see it all,
    the rows of no programme too, such as directory imports)."""
    every = frozenset(programs)
    router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[Depends(only_declared_query)])
    Caller = Annotated[Principal, Depends(caller_dependency)]

    @router.get("", response_model=AuditList, summary="The audit register, oldest first (JSON or CSV)",
                responses={**problem_responses(401, 403, 422),
                           200: {"description": "the rows", "content": {
                               "application/json": {"schema": {"$ref": "#/components/schemas/AuditList"}},
                               "text/csv": {"schema": {"type": "string"}}}}})
    async def register_rows(caller: Caller, program: Annotated[str | None, Query(pattern=PROGRAM_PATTERN)] = None,
                            format: Annotated[Literal["json", "csv"], Query()] = "json",  # noqa: A002
                            limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000) -> Response:
        asked = every if program is None else frozenset({program})
        if not asked or not caller.may_in_all(asked, TokenRole.ADMIN):
            raise Problem(403, "the register is for an admin of the programme (of every programme, without "
                               "`program`)")
        rows = await register.rows(None if program is None else asked, limit)
        if format == "csv":
            name = f"budkavle-audit-{program or 'all'}.csv"
            return Response(as_csv(rows), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return Response(AuditList(rows=rows).model_dump_json(), media_type="application/json")

    return router
