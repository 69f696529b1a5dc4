"""The tailor's own record of what follows must-know news that asks to be acknowledged: who acknowledged it,
the reminders and escalation steps planned, and each one sent (tables in `store.py`)."""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import DeliveryPlan
from contracts.events import Event, parse_event
from contracts.feedback import Acknowledged
from services.common.db import as_utc, insert_for
from services.tailor.escalation import Step
from services.tailor.store import Stage, acknowledgements, events, reminders


@dataclass(frozen=True)
class Sent:
    """A reminder or escalation step sent and not yet confirmed by the channels."""

    id: UUID
    kind: str  # reminder | email | managers
    event: Event
    at: datetime
    targets: dict[str, list[str]]  # target group → whom it went to (people, or for a notice their managers)


@dataclass(frozen=True)
class Ahead:
    """An event that went out with reminders or escalation steps planned (to tell a scheduler again)."""

    event: Event
    reminders: list[datetime]
    steps: list[Step]
    targets: dict[str, dict[str, list[str]]]


class ReminderStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record_acknowledgements(self, given: Iterable[Acknowledged]) -> int:
        rows = [{"event_id": str(a.event_id), "person_id": a.person_id, "at": a.acknowledged_at.astimezone(UTC)}
                for a in given if a.person_id is not None]
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(insert_for(conn)(acknowledgements).on_conflict_do_nothing(), rows)
        return len(rows)

    async def acknowledged(self, event_id: UUID) -> set[str]:
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(acknowledgements.c.person_id).where(
                acknowledgements.c.event_id == str(event_id)))).scalars())

    async def plan(self, event_id: UUID, times: Sequence[datetime], steps: Sequence[Step]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(events).where(events.c.event_id == str(event_id)).values(
                reminders=json.dumps([t.astimezone(UTC).isoformat() for t in times]) if times else None,
                escalations=json.dumps([s.as_json() for s in steps]) if steps else None))

    async def planned(self, event_id: UUID) -> tuple[list[datetime], list[Step]]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(events.c.reminders, events.c.escalations).where(
                events.c.event_id == str(event_id)))).first()
        if row is None:
            return [], []
        return ([datetime.fromisoformat(t) for t in json.loads(row.reminders)] if row.reminders else [],
                [Step.from_json(s) for s in json.loads(row.escalations)] if row.escalations else [])

    async def sent(self, ids: Iterable[UUID]) -> set[str]:
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(reminders.c.reminder_id).where(
                reminders.c.reminder_id.in_([str(i) for i in ids])))).scalars())

    async def record(self, rid: UUID, event_id: UUID, at: datetime, targets: Mapping[str, Sequence[str]],
                     expected: int, kind: str = "reminder") -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(reminders).values(
                reminder_id=str(rid), event_id=str(event_id), at=at.astimezone(UTC), targets=json.dumps(targets),
                kind=kind, status=Stage.PLANNED if expected else Stage.DELIVERED, expected=expected,
                updated_at=datetime.now(UTC)))

    async def update_plan(self, event_id: UUID, plan: DeliveryPlan) -> None:
        """The event's plan as it now reads (an escalation step said in it)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(events).where(events.c.event_id == str(event_id))
                               .values(plan=plan.model_dump_json()))

    async def unconfirmed(self) -> list[Sent]:
        """What was sent and the channels have not all confirmed, with its event as it reads."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(reminders.c.reminder_id, reminders.c.kind, reminders.c.at,
                                              reminders.c.targets, events.c.body)
                                       .join(events, events.c.event_id == reminders.c.event_id)
                                       .where(reminders.c.status == Stage.PLANNED))).all()
        return [Sent(UUID(r.reminder_id), r.kind, parse_event(r.body), as_utc(r.at), json.loads(r.targets))
                for r in rows]

    async def ahead(self) -> list[Ahead]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(events.c.body, events.c.reminders, events.c.escalations,
                                              events.c.targets).where(
                (events.c.reminders.is_not(None)) | (events.c.escalations.is_not(None)),
                events.c.targets.is_not(None), events.c.status.in_((Stage.PLANNED, Stage.DELIVERED))))).all()
        return [Ahead(parse_event(r.body),
                      [datetime.fromisoformat(t) for t in json.loads(r.reminders)] if r.reminders else [],
                      [Step.from_json(s) for s in json.loads(r.escalations)] if r.escalations else [],
                      json.loads(r.targets)) for r in rows]
