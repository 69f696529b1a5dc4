"""Dead letters, visible and recoverable: what the bus could not use, kept in the gateway's own table, listed
per programme, and sent again (`redrive`) after a fix.

The list shows ids, topic, consumer, reason and time, never the payload (it may hold people's addresses).
A letter belongs to the programme its payload names; one whose payload cannot even be read belongs to no
programme, and only an admin token sees it or sends it again.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import BigInteger, Column, DateTime, Integer, String, Table, Text, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import DeadLetter
from services.common.auth import Principal, TokenAuthority, TokenRole, author_of, caller_of
from services.common.bus import Bus
from services.common.db import as_utc
from services.common.problems import Problem, only_declared_query, problem_responses
from services.common.sessions import Sessions
from services.gateway.audit import AuditAction, AuditRegister, Entry
from services.gateway.store import metadata

dead_letters = Table(
    "gateway_dead_letters", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(300), nullable=False),
    Column("consumer", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("program", String(32), nullable=True, index=True),
    Column("event_id", String(36), nullable=True, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("redriven_at", DateTime(timezone=True), nullable=True),
    Column("redrives", Integer, nullable=False, default=0),
)


class DeadLetterSummary(BaseModel):
    id: int
    topic: str
    consumer: str
    reason: str
    program: str | None
    event_id: str | None
    at: AwareDatetime
    redriven_at: AwareDatetime | None
    redrives: int


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterSummary]


class Redriven(BaseModel):
    id: int
    topic: str
    redrives: int


@dataclass(frozen=True)
class StoredLetter:
    summary: DeadLetterSummary
    key: str
    payload: str


def _about(payload: str) -> tuple[str | None, str | None]:
    """The programme and event a payload names, when it can be read at all."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    program, event_id = data.get("program"), data.get("event_id")
    if program is None and isinstance(data.get("plan"), dict):  # an EventPlanned
        program, event_id = data["plan"].get("program"), data["plan"].get("event_id")
    return (str(program)[:32] if isinstance(program, str) else None,
            str(event_id)[:36] if isinstance(event_id, str) else None)


class DeadLetterStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def keep(self, letters: list[tuple[DeadLetter, str]]) -> None:
        """Keep each (letter, its bus key)."""
        rows = []
        for letter, key in letters:
            program, event_id = _about(letter.payload)
            rows.append({"topic": letter.topic, "key": key, "consumer": letter.consumer, "reason": letter.reason,
                         "payload": letter.payload, "program": program, "event_id": event_id,
                         "at": as_utc(letter.at), "redrives": 0})
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(insert(dead_letters), rows)

    async def visible(self, caller: Principal, event_id: str | None = None,
                      limit: int = 200) -> list[DeadLetterSummary]:
        """The caller's programmes' letters, and for an admin those of no programme too."""
        mine = dead_letters.c.program.in_(sorted(caller.programs))
        query = (select(dead_letters)
                 .where(or_(mine, dead_letters.c.program.is_(None)) if caller.may(TokenRole.ADMIN) else mine)
                 .order_by(dead_letters.c.id.desc()).limit(limit))
        if event_id is not None:
            query = query.where(dead_letters.c.event_id == event_id)
        async with self.engine.connect() as conn:
            return [self._summary(r) for r in (await conn.execute(query)).all()]

    async def get(self, letter_id: int) -> StoredLetter | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id))).first()
        return StoredLetter(self._summary(row), row.key, row.payload) if row else None

    async def purge(self, before: datetime) -> int:
        """The retention: a dead letter's payload may name people (a delivery command's recipients)."""
        async with self.engine.begin() as conn:
            return (await conn.execute(delete(dead_letters).where(dead_letters.c.at < before))).rowcount or 0

    async def mark_redriven(self, letter_id: int) -> int:
        async with self.engine.begin() as conn:
            await conn.execute(update(dead_letters).where(dead_letters.c.id == letter_id)
                               .values(redriven_at=datetime.now(UTC), redrives=dead_letters.c.redrives + 1))
            return int((await conn.execute(select(dead_letters.c.redrives)
                                           .where(dead_letters.c.id == letter_id))).scalar_one())

    @staticmethod
    def _summary(r: Any) -> DeadLetterSummary:
        return DeadLetterSummary(id=r.id, topic=r.topic, consumer=r.consumer, reason=r.reason, program=r.program,
                                 event_id=r.event_id, at=as_utc(r.at), redriven_at=as_utc(r.redriven_at),
                                 redrives=r.redrives)


def build_http(store: DeadLetterStore, authority: TokenAuthority, bus: Bus, sessions: Sessions | None = None,
               register: AuditRegister | None = None) -> APIRouter:
    """With `sessions`, a signed-in person may call it through the console: they see and redrive the dead
    letters of the programmes they are admin of."""
    router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], dependencies=[Depends(only_declared_query)])

    Caller = Annotated[Principal, Depends(caller_of(authority, sessions))]

    @router.get("", response_model=DeadLetterList, summary="What the bus could not use, newest first",
                responses=problem_responses(401, 422))
    async def list_dead_letters(caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> DeadLetterList:
        return DeadLetterList(dead_letters=await store.visible(caller, limit=limit))

    @router.post("/{letter_id}/redrive", status_code=202, response_model=Redriven,
                 summary="Send a dead letter again, to the topic it came from", responses=problem_responses(401, 403, 404, 422))
    async def redrive(letter_id: Annotated[int, Path(ge=1, le=2**62)], caller: Caller) -> Redriven:
        letter = await store.get(letter_id)
        owner = None if letter is None else letter.summary.program
        if letter is None or not (caller.may(TokenRole.ADMIN) if owner is None else owner in caller.programs):
            raise Problem(404, "no such dead letter")
        if caller.person is not None and not caller.may_in(owner or "", TokenRole.ADMIN):
            raise Problem(403, "only an admin of the programme may send a dead letter again")
        if not caller.may(TokenRole.PUBLISHER) and caller.person is None:
            raise Problem(403, "a reader token may not send anything")
        await bus.publish_json(letter.summary.topic, letter.payload.encode(), letter.key)
        redrives = await store.mark_redriven(letter_id)
        if register is not None:
            await register.append(Entry(actor=author_of(caller), action=AuditAction.REDRIVE, program=owner,
                                        target=f"dead-letter:{letter_id}",
                                        detail=f"to {letter.summary.topic}, redrive {redrives}"))
        return Redriven(id=letter_id, topic=letter.summary.topic, redrives=redrives)

    return router
