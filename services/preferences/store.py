"""The preferences service's own tables: each person's choices (with whether the change has been announced
on the bus yet: an outbox), and the one-time form nonces already used."""

from datetime import UTC, datetime

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.preferences import PreferencesChanged
from services.common.db import as_utc, upsert
from services.common.migrations import Migrations

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "preferences", metadata)

choices = Table(
    "preferences_choices", metadata,
    Column("program", String(32), primary_key=True),
    Column("person_id", String(128), primary_key=True),
    Column("digest", String(8), nullable=False),
    Column("newsletters", Boolean, nullable=False),
    Column("awareness_email", Boolean, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("announced", Boolean, nullable=False, index=True),
)

used_forms = Table(
    "preferences_used_forms", metadata,
    Column("nonce", String(64), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)


def _choice(row: object) -> PreferencesChanged:
    return PreferencesChanged(program=row.program, person_id=row.person_id, digest=row.digest,  # type: ignore[attr-defined]
                              newsletters=row.newsletters, awareness_email=row.awareness_email,  # type: ignore[attr-defined]
                              changed_at=as_utc(row.changed_at))  # type: ignore[attr-defined]


class PreferencesStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, program: str, person_id: str) -> PreferencesChanged | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(choices).where(choices.c.program == program,
                                                            choices.c.person_id == person_id))).first()
        return _choice(row) if row is not None else None

    async def save(self, choice: PreferencesChanged) -> None:
        """Keep the choice, not yet announced (the outbox): a crash before the announcement loses nothing."""
        async with self.engine.begin() as conn:
            await upsert(conn, choices, {**choice.model_dump(), "changed_at": choice.changed_at.astimezone(UTC),
                                         "announced": False}, ("program", "person_id"))

    async def unannounced(self) -> list[PreferencesChanged]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(choices).where(choices.c.announced.is_(False)))).all()
        return [_choice(r) for r in rows]

    async def mark_announced(self, choice: PreferencesChanged) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(choices).where(
                choices.c.program == choice.program, choices.c.person_id == choice.person_id,
                choices.c.changed_at <= choice.changed_at.astimezone(UTC)).values(announced=True))  # not if changed since

    async def purge(self, before: datetime) -> int:
        """The retention: used form nonces are only needed while a form lives (a day), never for a year."""
        async with self.engine.begin() as conn:
            return (await conn.execute(delete(used_forms).where(used_forms.c.at < before))).rowcount or 0

    async def use_form(self, nonce: str) -> bool:
        """True the first time a form's nonce is used, False for a replay."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(used_forms).values(nonce=nonce, at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True
