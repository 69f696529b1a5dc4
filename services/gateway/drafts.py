"""Drafts: a message being written, kept by the gateway so that it passes the same door as every write (who may
write for the programme, who wrote last). A draft holds the compose form's fields as typed (not yet a valid
event: that is checked when it is published) and a version, so that two people editing one draft never
overwrite each other silently: a save names the version it started from, and a newer one is refused (409)
with whose change it was."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Column, DateTime, Integer, String, Table, Text, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import PROGRAM_PATTERN
from services.common.auth import Principal, TokenRole, author_of
from services.common.db import as_utc
from services.common.problems import Problem, only_declared_query, problem_responses, read_model
from services.gateway.store import metadata

#: A draft is at most what an event may be, and a little for the form's own names.
MAX_DRAFT_BYTES = 300 * 1024
FIELD_NAME = r"^[a-z][a-z0-9_.]{0,99}$"
EVENT_TYPE = r"^[a-z][a-z0-9_.-]{0,39}$"

drafts = Table(
    "gateway_drafts", metadata,
    Column("draft_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False, index=True),
    Column("type", String(40), nullable=False),
    Column("title", String(200), nullable=False),
    Column("fields", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The form's fields by their contract names: a value, or several (a list's lines, checked target groups).
Fields = dict[Annotated[str, Field(pattern=FIELD_NAME)], str | list[str]]


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program: str = Field(pattern=PROGRAM_PATTERN)
    type: str = Field(pattern=EVENT_TYPE)
    fields: Fields = Field(max_length=500, json_schema_extra={"additionalProperties": False})


class DraftChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version the change was made from; a newer one is a conflict (409)")
    fields: Fields = Field(max_length=500, json_schema_extra={"additionalProperties": False})


class DraftSummary(BaseModel):
    draft_id: UUID
    program: str
    type: str
    title: str
    version: int
    created_by: str
    updated_by: str
    updated_at: AwareDatetime


class Draft(DraftSummary):
    fields: Fields


class DraftList(BaseModel):
    drafts: list[DraftSummary] = Field(description="most recently changed first")


def title_of(fields: dict[str, Any]) -> str:
    title = fields.get("payload.title")
    return (title if isinstance(title, str) and title.strip() else "(utan rubrik)")[:200]


class DraftStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, draft: DraftIn, author: str) -> Draft:
        row = {"draft_id": str(uuid4()), "program": draft.program, "type": draft.type,
               "title": title_of(draft.fields), "fields": json.dumps(draft.fields, ensure_ascii=False),
               "version": 1, "created_by": author, "updated_by": author, "updated_at": datetime.now(UTC)}
        async with self.engine.begin() as conn:
            await conn.execute(insert(drafts).values(**row))
        return self._draft(row)

    async def get(self, draft_id: UUID) -> Draft | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(drafts).where(drafts.c.draft_id == str(draft_id)))).mappings().first()
        return None if row is None else self._draft(row)

    async def change(self, draft_id: UUID, change: DraftChange, author: str) -> Draft | None:
        """The draft as changed, or None when its version is no longer `change.version` (someone was first)."""
        values = {"fields": json.dumps(change.fields, ensure_ascii=False), "title": title_of(change.fields),
                  "version": change.version + 1, "updated_by": author, "updated_at": datetime.now(UTC)}
        async with self.engine.begin() as conn:
            done = await conn.execute(update(drafts).where(drafts.c.draft_id == str(draft_id),
                                                           drafts.c.version == change.version).values(**values))
        return await self.get(draft_id) if done.rowcount else None

    async def remove(self, draft_id: UUID, version: int) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(delete(drafts).where(drafts.c.draft_id == str(draft_id),
                                                           drafts.c.version == version))
        return bool(done.rowcount)

    async def of_programs(self, programs: set[str], limit: int) -> list[DraftSummary]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(drafts).where(drafts.c.program.in_(sorted(programs)))
                                       .order_by(drafts.c.updated_at.desc()).limit(limit))).mappings().all()
        return [DraftSummary(**{k: v for k, v in self._draft(r).model_dump().items() if k != "fields"}) for r in rows]

    @staticmethod
    def _draft(row: Any) -> Draft:
        return Draft(draft_id=UUID(row["draft_id"]), program=row["program"], type=row["type"], title=row["title"],
                     version=row["version"], created_by=row["created_by"], updated_by=row["updated_by"],
                     updated_at=as_utc(row["updated_at"]), fields=json.loads(row["fields"]))


def build_http(store: DraftStore, caller_dependency: Any) -> APIRouter:
    """The drafts API, for those who may publish in the draft's programme (an editor, a publishing token);
    to anyone else a draft does not exist (404)."""
    router = APIRouter(prefix="/v1/drafts", tags=["drafts"], dependencies=[Depends(only_declared_query)])
    Caller = Annotated[Principal, Depends(caller_dependency)]

    async def writable(draft_id: UUID, caller: Principal) -> Draft:
        draft = await store.get(draft_id)
        if draft is None or not caller.may_in(draft.program, TokenRole.PUBLISHER):
            raise Problem(404, "no such draft")
        return draft

    def conflict(draft: Draft) -> Problem:
        return Problem(409, f"changed by {draft.updated_by} at {draft.updated_at.isoformat()}: "
                            f"version {draft.version} is newer", [{"path": "version", "reason": str(draft.version)}])

    @router.get("", response_model=DraftList, summary="The drafts of the programmes the caller may publish for",
                responses=problem_responses(401, 422))
    async def list_drafts(caller: Caller, program: Annotated[str | None, Query(pattern=PROGRAM_PATTERN)] = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> DraftList:
        chosen = {p for p in caller.programs if caller.may_in(p, TokenRole.PUBLISHER) and program in (None, p)}
        return DraftList(drafts=await store.of_programs(chosen, limit))

    @router.post("", status_code=201, response_model=Draft, summary="Save a new draft",
                 openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                     "schema": DraftIn.model_json_schema()}}}},
                 responses=problem_responses(401, 403, 413, 422))
    async def create(request: Request, caller: Caller) -> Draft:
        draft = await read_model(request, DraftIn, MAX_DRAFT_BYTES, "draft")
        if not caller.may_in(draft.program, TokenRole.PUBLISHER):
            raise Problem(403, f"may not write for programme {draft.program!r}")
        return await store.create(draft, author_of(caller))

    @router.get("/{draft_id}", response_model=Draft, summary="A draft", responses=problem_responses(401, 404, 422))
    async def get(draft_id: UUID, caller: Caller) -> Draft:
        return await writable(draft_id, caller)

    @router.put("/{draft_id}", response_model=Draft, summary="Change a draft, from the version the change was made from",
                openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                    "schema": DraftChange.model_json_schema()}}}},
                responses=problem_responses(401, 404, 409, 413, 422))
    async def change(draft_id: UUID, request: Request, caller: Caller) -> Draft:
        await writable(draft_id, caller)
        body = await read_model(request, DraftChange, MAX_DRAFT_BYTES, "draft")
        changed = await store.change(draft_id, body, author_of(caller))
        if changed is None:
            raise conflict(await writable(draft_id, caller))
        return changed

    @router.delete("/{draft_id}", status_code=204, summary="Remove a draft (e.g. once it is published)",
                   responses=problem_responses(401, 404, 409, 422))
    async def remove(draft_id: UUID, caller: Caller,
                     version: Annotated[int, Query(ge=1, le=2**31)]) -> Response:
        await writable(draft_id, caller)
        if not await store.remove(draft_id, version):
            raise conflict(await writable(draft_id, caller))
        return Response(status_code=204)

    return router
