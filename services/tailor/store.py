"""The tailor's own tables: the recipient directory and what it has done with each event."""

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import DeliveryOutcomes, DeliveryPlan
from contracts.events import Event, parse_event
from contracts.preferences import PreferencesChanged
from contracts.schedule import DigestDue, parse_schedule_due
from services.common.db import as_utc, upsert
from services.common.migrations import Migrations
from services.common.tallies import beyond_plan, chunk_table, sort_out, tally
from services.tailor.directory import Recipient
from services.tailor.index import DirectoryIndex
from services.tailor.policy import Choice, hold_until

metadata = MetaData()


class Stage(StrEnum):
    """How far the tailor has taken an event or a digest (its own record, the `status` columns)."""

    HELD = "held"  # until its embargo or send time; the scheduler says when
    PLANNED = "planned"  # its commands are out; not every delivery has ended yet
    DELIVERED = "delivered"  # every delivery ended (sent or failed), or none was targeted
    CANCELLED = "cancelled"  # withdrawn while held: nothing of it is ever sent

    @property
    def went_out(self) -> bool:
        return self in (Stage.PLANNED, Stage.DELIVERED)
MIGRATIONS = Migrations.beside(__file__, "tailor", metadata)

recipients = Table(
    "tailor_recipients", metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("organisation", String(200), nullable=False, default=""),
    Column("role", String(100), nullable=False, default=""),
    Column("profession", String(100), nullable=False, default=""),
    Column("area", String(64), nullable=False, default=""),
    Column("municipality", String(100), nullable=False, default=""),
    Column("options", String(20), nullable=False, default=""),
    Column("manager", String(128), nullable=False, server_default=""),  # the manager's directory id, or ""
)

#: One row: bumped by every directory import, so that a tailor can keep the directory in memory and
#: reload it only when another process (e.g. `budkavle recipients import`) replaced it.
#: Directory files checked and waiting for a person's confirmation (kept a day at most).
directory_imports = Table(
    "tailor_directory_imports", metadata,
    Column("import_id", String(32), primary_key=True),
    Column("csv", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

directory_version = Table(
    "tailor_directory_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

events = Table(
    "tailor_events", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # held | planned | delivered
    Column("release_at", DateTime(timezone=True), nullable=True, index=True),
    Column("body", Text, nullable=False),
    Column("plan", Text, nullable=True),  # the DeliveryPlan announced
    Column("targets", Text, nullable=True),  # channel → target → recipient ids: what was planned, to re-emit
    Column("expected", Integer, nullable=True),  # deliveries targeted; delivered once as many are done
    Column("done", Integer, nullable=False, server_default="0"),  # deliveries that ended, counted as they come
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("retracted_at", DateTime(timezone=True), nullable=True),  # withdrawn by a retraction: in no digest
    # channel → target group → the instant its deliveries wait for (quiet hours, rule 10): not emitted before
    Column("waiting", Text, nullable=True),
    # the instants (JSON) at which those who have not acknowledged it are reminded (`acknowledge_by`)
    Column("reminders", Text, nullable=True),
    # the escalations planned (JSON: instant, step, target groups) when it is not acknowledged in time
    Column("escalations", Text, nullable=True),
)

#: Reminders sent, each kept until the channels confirm its deliveries (sent again after a start, like events),
#: with whom it reminded (target group → ids): those who had not acknowledged by then.
reminders = Table(
    "tailor_reminders", metadata,
    Column("reminder_id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("targets", Text, nullable=False),
    Column("kind", String(16), nullable=False, server_default="reminder"),  # reminder | email | managers
    Column("status", String(16), nullable=False, index=True),  # planned | delivered
    Column("expected", Integer, nullable=False),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: What came back of people's mail (`delivery.bounced`): soft bounces counted, and the address marked
#: undeliverable after a hard one (or too many soft). Kept apart from the directory, so that an import keeps it;
#: it applies while the person's address is the one that bounced (`address_sha256`).
bounces = Table(
    "tailor_bounces", metadata,
    Column("person_id", String(128), primary_key=True),
    Column("address_sha256", String(64), nullable=False),
    Column("soft", Integer, nullable=False, server_default="0"),
    Column("undeliverable", String(400), nullable=True),  # why, once the address takes no more mail
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The tailor's read model of acknowledgements through people's own links (`feedback.acknowledged`): whom a
#: reminder leaves out.
acknowledgements = Table(
    "tailor_acknowledgements", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("person_id", String(128), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

#: The tailor's read model of the channels' outcomes: each delivery command's newest counts (`tallies.py`).
done = chunk_table(metadata, "tailor_chunks")


#: Digests sent and not yet confirmed by the channels: sent again after a start (the ledgers make the
#: repeats no-ops), like planned events.
digests = Table(
    "tailor_digests", metadata,
    Column("digest_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False),
    Column("due", Text, nullable=False),  # the ScheduleDue it answers
    Column("status", String(16), nullable=False, index=True),  # planned | delivered
    Column("expected", Integer, nullable=False),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The tailor's read model of people's choices, fed by `preferences.changed` (the newest change wins).
preferences = Table(
    "tailor_preferences", metadata,
    Column("program", String(32), primary_key=True),
    Column("person_id", String(128), primary_key=True),
    Column("digest", String(8), nullable=False),
    Column("newsletters", Boolean, nullable=False),
    Column("awareness_email", Boolean, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class EventRecord:
    """What the tailor keeps of an event: how far it is, the event as it now reads (a correction replaces it),
    its plan and whom it targeted (None once the retention forgot them)."""

    stage: Stage
    event: Event
    plan: DeliveryPlan | None
    targets: dict[str, dict[str, list[str]]] | None
    waiting: "Waits" = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedEvent:
    """An event the tailor planned and the channels have not all confirmed: enough to emit it again."""

    event: Event
    plan: str
    targets: dict[str, dict[str, list[str]]]
    waiting: "Waits" = field(default_factory=dict)


#: channel → target group → until when its deliveries wait (rule 10).
Waits = dict[str, dict[str, datetime]]


def waits_json(waiting: Mapping[str, Mapping[str, datetime]]) -> str | None:
    return json.dumps({name: {target: until.astimezone(UTC).isoformat() for target, until in by_target.items()}
                       for name, by_target in waiting.items()}) if waiting else None


def parse_waits(text: str | None) -> Waits:
    return {name: {target: datetime.fromisoformat(until) for target, until in by_target.items()}
            for name, by_target in json.loads(text).items()} if text else {}


def _row(r: Recipient) -> dict[str, str]:
    return {"id": r.id, "name": r.name, "email": r.email, "organisation": r.organisation, "role": r.role,
            "profession": r.profession, "area": r.area, "municipality": r.municipality,
            "options": ";".join(str(o) for o in sorted(r.options)), "manager": r.manager}


def targets_json(targets: Mapping[str, Mapping[str, Iterable[str]]]) -> str:
    """channel → target → recipient ids as JSON, written id by id: a fan-out's 100 000 ids are never held as
    a list of strings (the ids come one at a time from the directory's index)."""
    out = io.StringIO()
    out.write("{")
    for i, (channel, by_target) in enumerate(targets.items()):
        out.write(f"{',' if i else ''}{json.dumps(channel)}:{{")
        for j, (target, ids) in enumerate(by_target.items()):
            out.write(f"{',' if j else ''}{json.dumps(target)}:[")
            for k, person_id in enumerate(ids):
                out.write(f"{',' if k else ''}{json.dumps(person_id)}")
            out.write("]")
        out.write("}")
    out.write("}")
    return out.getvalue()


class TailorStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._cache: tuple[int, DirectoryIndex] | None = None

    async def replace_directory(self, people: Iterable[Recipient]) -> int:
        """Replace the whole directory in one transaction: an import lands whole or not at all."""
        rows = [_row(r) for r in people]
        async with self.engine.begin() as conn:
            await conn.execute(delete(recipients))
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(recipients), rows[start:start + 5000])
            bumped = await conn.execute(update(directory_version).where(directory_version.c.id == 1)
                                        .values(version=directory_version.c.version + 1))
            if bumped.rowcount == 0:
                await conn.execute(insert(directory_version).values(id=1, version=1))
        return len(rows)

    async def keep_import(self, import_id: str, text: str, created_by: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(directory_imports).values(import_id=import_id, csv=text, created_by=created_by,
                                                               created_at=datetime.now(UTC)))

    async def pending_import(self, import_id: str, since: datetime) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(directory_imports.c.csv).where(
                directory_imports.c.import_id == import_id, directory_imports.c.created_at >= since))).scalar()

    async def drop_imports(self, import_id: str | None = None, before: datetime | None = None) -> int:
        """Forget one checked file (applied), or those checked before `before` (never confirmed)."""
        query = delete(directory_imports)
        if import_id is not None:
            query = query.where(directory_imports.c.import_id == import_id)
        if before is not None:
            query = query.where(directory_imports.c.created_at < before)
        async with self.engine.begin() as conn:
            return (await conn.execute(query)).rowcount or 0

    async def directory_size(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(recipients))).scalar_one())

    async def full_directory(self) -> list[Recipient]:
        """Every person with name and address, read from the table (a directory import compares with it)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(recipients))).all()
        return [Recipient(id=r.id, name=r.name, email=r.email, organisation=r.organisation, role=r.role,
                          profession=r.profession, area=r.area, municipality=r.municipality,
                          options=frozenset(int(o) for o in r.options.split(";") if o), manager=r.manager)
                for r in rows]

    async def contacts(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """id → (name, address) of these people (those still in the directory), read when their mail is
        composed: the directory in memory holds neither."""
        wanted = list(ids)
        found: dict[str, tuple[str, str]] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = (await conn.execute(select(recipients.c.id, recipients.c.name, recipients.c.email).where(
                    recipients.c.id.in_(wanted[start:start + 500])))).all()
                found.update({r.id: (r.name, r.email) for r in rows})
        return found

    async def load_index(self) -> DirectoryIndex:
        """The directory with its index, from memory unless an import has replaced it since it was read. It
        holds what planning needs (ids and the selector attributes), not names or addresses (`contacts`):
        memory that grows with the directory by as little as it can."""
        c = recipients.c
        async with self.engine.connect() as conn:
            version = int((await conn.execute(select(directory_version.c.version))).scalar() or 0)
            if self._cache is not None and self._cache[0] == version:
                return self._cache[1]
            index = DirectoryIndex()
            options: dict[str, frozenset[int]] = {}  # a directory repeats a few option sets thousands of times
            result = await conn.stream(select(c.id, c.organisation, c.role, c.profession, c.area, c.municipality,
                                              c.options, c.manager))
            async for rows in result.partitions(5000):  # a few thousand rows at a time, not all at once
                for r in rows:
                    chosen = options.get(r.options)
                    if chosen is None:
                        chosen = options[r.options] = frozenset(int(o) for o in r.options.split(";") if o)
                    index.add(r.id, r.organisation, r.role, r.profession, r.area, r.municipality, chosen, r.manager)
        self._cache = (version, index)
        return index

    async def status(self, event_id: UUID) -> Stage | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(events.c.status).where(events.c.event_id == str(event_id)))).scalar()
        return Stage(value) if value is not None else None

    async def record(self, event: Event, status: Stage, plan: DeliveryPlan | None = None,
                     targets: Mapping[str, Mapping[str, Iterable[str]]] | None = None,
                     waiting: Mapping[str, Mapping[str, datetime]] | None = None) -> None:
        until = hold_until(event)
        release_at = until.astimezone(UTC) if status is Stage.HELD and until else None
        expected = sum(n for by_channel in plan.targeted.values() for n in by_channel.values()) if plan else None
        async with self.engine.begin() as conn:
            await upsert(conn, events, {"event_id": str(event.event_id), "program": event.program,
                                        "body": event.model_dump_json(), "status": status, "release_at": release_at,
                                        "plan": plan.model_dump_json() if plan else None,
                                        "targets": targets_json(targets) if targets is not None else None,
                                        "expected": expected, "waiting": waits_json(waiting or {}),
                                        "updated_at": datetime.now(UTC)}, ("event_id",))

    async def stored_plan(self, event_id: UUID) -> str | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(events.c.plan).where(events.c.event_id == str(event_id)))).scalar()
        return str(value) if value is not None else None

    async def unconfirmed(self) -> list[PlannedEvent]:
        """Events planned whose deliveries the channels have not all confirmed (sent or failed)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(events.c.body, events.c.plan, events.c.targets, events.c.waiting).where(
                events.c.status == Stage.PLANNED, events.c.targets.is_not(None)))).all()
        return [PlannedEvent(parse_event(r.body), r.plan, json.loads(r.targets), parse_waits(r.waiting))
                for r in rows]

    async def purge(self, before: datetime) -> int:
        """The retention: for what was delivered before `before`, forget whom it reached (the deliveries
        counted, the recipients planned); the event itself, its plan and its counts stay."""
        old_events = select(events.c.event_id).where(events.c.status == Stage.DELIVERED, events.c.updated_at < before)
        old_digests = select(digests.c.digest_id).where(digests.c.status == Stage.DELIVERED, digests.c.updated_at < before)
        async with self.engine.begin() as conn:
            removed = (await conn.execute(delete(done).where(done.c.event_id.in_(old_events)))).rowcount or 0
            removed += (await conn.execute(delete(done).where(done.c.event_id.in_(old_digests)))).rowcount or 0
            await conn.execute(update(events).where(events.c.event_id.in_(old_events), events.c.targets.is_not(None))
                               .values(targets=None))
            old_reminders = select(reminders.c.reminder_id).where(reminders.c.status == Stage.DELIVERED,
                                                                  reminders.c.updated_at < before)
            removed += (await conn.execute(delete(done).where(done.c.event_id.in_(old_reminders)))).rowcount or 0
            await conn.execute(delete(reminders).where(reminders.c.status == Stage.DELIVERED,
                                                       reminders.c.updated_at < before))
            await conn.execute(delete(acknowledgements).where(acknowledgements.c.at < before))
        return removed

    async def record_done(self, states: Sequence[DeliveryOutcomes]) -> "Counted":
        """Count the deliveries that ended; an event all of whose deliveries ended becomes delivered. Each
        batch costs its own size, never the event's: a chunk's newer state adds what it ended since the
        state kept before. A state for an event or digest never planned, or a chunk larger than what the
        plan targeted to its group on its channel, is refused and counts nothing."""
        result = Counted()
        ids = sorted({str(s.event_id) for s in states})
        async with self.engine.begin() as conn:
            planned: dict[str, tuple[dict[str, dict[str, int]], int]] = {}
            for start in range(0, len(ids), 500):
                some = ids[start:start + 500]
                for row in (await conn.execute(select(events.c.event_id, events.c.plan, events.c.expected)
                                               .where(events.c.event_id.in_(some)))).all():
                    targeted = DeliveryPlan.model_validate_json(row.plan).targeted if row.plan else {}
                    planned[row.event_id] = targeted, row.expected or 0
                for digest in (await conn.execute(select(digests.c.digest_id, digests.c.expected)
                                                  .where(digests.c.digest_id.in_(some)))).all():
                    planned[digest.digest_id] = {}, digest.expected
                for reminder in (await conn.execute(select(reminders.c.reminder_id, reminders.c.expected)
                                                    .where(reminders.c.reminder_id.in_(some)))).all():
                    planned[reminder.reminder_id] = {}, reminder.expected
            counted, result.refused = sort_out(states, lambda s: _beyond_plan(s, planned.get(str(s.event_id))))
            tallied = await tally(conn, done, counted)
            for event_id, more in tallied.ended.items():
                if not more:
                    continue
                for table, key in ((events, events.c.event_id), (digests, digests.c.digest_id),
                                   (reminders, reminders.c.reminder_id)):
                    await conn.execute(update(table).where(key == event_id).values(done=table.c.done + more))
                    reached = (await conn.execute(select(key).where(
                        key == event_id, table.c.status == Stage.PLANNED, table.c.done >= table.c.expected))).scalar()
                    if reached is not None:
                        result.delivered += 1
                        await conn.execute(update(table).where(key == event_id)
                                           .values(status=Stage.DELIVERED, updated_at=datetime.now(UTC)))
        return result

    async def leave_out(self, event_id: UUID, channel: str, target: str, gone: Iterable[str]) -> int:
        """People who left the directory before their delivery was composed: no longer targeted, and no longer
        waited for (an event whose every other delivery ended becomes delivered). Only those still targeted
        count, so a chunk composed again after a start changes nothing. Returns how many were left out."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(events.c.targets, events.c.expected).where(
                events.c.event_id == str(event_id)))).first()
            if row is None or row.targets is None:
                return 0  # a digest: its expectation is counted after composing
            targets = json.loads(row.targets)
            planned = targets.get(channel, {}).get(target, [])
            left = set(gone) & set(planned)
            if not left:
                return 0
            targets[channel][target] = [p for p in planned if p not in left]
            await conn.execute(update(events).where(events.c.event_id == str(event_id)).values(
                targets=json.dumps(targets), expected=events.c.expected - len(left)))
            await conn.execute(update(events).where(
                events.c.event_id == str(event_id), events.c.status == Stage.PLANNED,
                events.c.done >= events.c.expected).values(status=Stage.DELIVERED, updated_at=datetime.now(UTC)))
        return len(left)

    async def record_digest(self, due: DigestDue, expected: int) -> None:
        """A digest sent: kept until the channels confirm its `expected` deliveries (none: confirmed)."""
        async with self.engine.begin() as conn:
            current = (await conn.execute(select(digests.c.status).where(
                digests.c.digest_id == str(due.digest_id)))).scalar()
            if current == Stage.DELIVERED:
                return
            await upsert(conn, digests, {"digest_id": str(due.digest_id), "program": due.program,
                                         "due": due.model_dump_json(), "expected": expected,
                                         "status": Stage.PLANNED if expected else Stage.DELIVERED,
                                         "updated_at": datetime.now(UTC)}, ("digest_id",))

    async def unconfirmed_digests(self) -> list[DigestDue]:
        """The digests sent whose deliveries the channels have not all confirmed (a row kept before version 2
        of the schedule topic reads as well)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(digests.c.due).where(digests.c.status == Stage.PLANNED))).all()
        return [d for r in rows if isinstance(d := parse_schedule_due(r.due), DigestDue)]

    async def record_preferences(self, changes: Iterable[PreferencesChanged]) -> int:
        """Keep each person's newest choices; an older change arriving late changes nothing."""
        newest: dict[tuple[str, str], PreferencesChanged] = {}
        for c in changes:
            key = (c.program, c.person_id)
            if key not in newest or c.changed_at > newest[key].changed_at:
                newest[key] = c
        kept = 0
        async with self.engine.begin() as conn:
            for (program, person), c in newest.items():
                current = (await conn.execute(select(preferences.c.changed_at).where(
                    preferences.c.program == program, preferences.c.person_id == person))).scalar()
                if current is not None and as_utc(current) >= c.changed_at:
                    continue
                await upsert(conn, preferences, {**c.model_dump(), "changed_at": c.changed_at.astimezone(UTC)},
                             ("program", "person_id"))
                kept += 1
        return kept

    async def choices(self, program: str) -> dict[str, Choice]:
        """Every choice made for the programme, by person."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(preferences).where(preferences.c.program == program))).all()
        return {r.person_id: Choice(r.digest, r.newsletters, r.awareness_email) for r in rows}

    async def held(self, event_id: UUID) -> tuple[Stage, Event] | None:
        """An event's status and the event itself, if the tailor has seen it."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(events.c.status, events.c.body)
                                      .where(events.c.event_id == str(event_id)))).first()
        return (Stage(row.status), parse_event(row.body)) if row is not None else None

    async def cancel(self, event_id: UUID) -> Stage | None:
        """Withdraw a held event; the stage it was at (cancelled only if it was held; None: never seen)."""
        async with self.engine.begin() as conn:
            value = (await conn.execute(select(events.c.status).where(events.c.event_id == str(event_id)))).scalar()
            if value == Stage.HELD:
                await conn.execute(update(events).where(events.c.event_id == str(event_id),
                                                        events.c.status == Stage.HELD)
                                   .values(status=Stage.CANCELLED, release_at=None, updated_at=datetime.now(UTC)))
        return Stage(value) if value is not None else None

    async def record_of(self, event_id: UUID) -> EventRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(events).where(events.c.event_id == str(event_id)))).first()
        if row is None:
            return None
        return EventRecord(Stage(row.status), parse_event(row.body),
                           DeliveryPlan.model_validate_json(row.plan) if row.plan else None,
                           json.loads(row.targets) if row.targets else None, parse_waits(row.waiting))

    async def amend(self, event_id: UUID, body: Event | None = None, retract: bool = False) -> None:
        """The event as a correction says it reads now (`body`: what later digests and releases tell), or
        withdrawn by a retraction (in no digest; a held one is never released)."""
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if body is not None:
            values["body"] = body.model_dump_json()
        if retract:
            values["retracted_at"] = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(update(events).where(events.c.event_id == str(event_id)).values(**values))
            if retract:
                await conn.execute(update(events).where(events.c.event_id == str(event_id),
                                                        events.c.status == Stage.HELD)
                                   .values(status=Stage.CANCELLED, release_at=None))

    async def held_events(self) -> list[Event]:
        """Every event held until an instant (an embargo, a newsletter's send time)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(events.c.body).where(events.c.status == Stage.HELD))).all()
        return [parse_event(r.body) for r in rows]

    async def published_between(self, program: str, start: datetime, end: datetime) -> list[Event]:
        """The programme's events that went out (planned or delivered) and were published in [start, end),
        oldest first: what a digest of that period tells."""
        async with self.engine.connect() as conn:  # an event is updated no earlier than it was published
            rows = (await conn.execute(select(events.c.body).where(
                events.c.program == program, events.c.status.in_((Stage.PLANNED, Stage.DELIVERED)),
                events.c.retracted_at.is_(None), events.c.updated_at >= start.astimezone(UTC)))).all()
        found = [e for e in (parse_event(r.body) for r in rows)
                 if e.published_at is not None and start <= e.published_at < end]
        return sorted(found, key=lambda e: e.published_at or end)


@dataclass
class Counted:
    """What a batch of outcome announcements did: events (and digests) that became delivered, and the
    announcements refused with the reason."""

    delivered: int = 0
    refused: list[tuple[DeliveryOutcomes, str]] = field(default_factory=list)


def _beyond_plan(state: DeliveryOutcomes, plan: tuple[dict[str, dict[str, int]], int] | None) -> str | None:
    """Why an announcement cannot be counted, if it cannot: never planned, or more than planned."""
    if plan is None:
        return f"outcomes for {state.event_id}, which was never planned: nothing counted"
    targeted, expected = plan
    return beyond_plan(state, targeted.get(state.audience_id, {}).get(state.channel, expected))
