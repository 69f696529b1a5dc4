"""The insights service's own tables.

What it hears (events, plans, delivery outcomes) and what people told it (answers, counted reads) are kept
per person only as long as the retention allows; `fold` then moves the old rows into per-group counts
(`insights_folded`) and deletes them, so the figures stay and the people go. Nothing here names a person:
a respondent is a pseudonym, and a delivery's recipient is the directory id the outcome carried.
"""

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
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
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import AddressBounced, DeliveryOutcomes, DeliveryPlan, DigestSent, FollowUpSent
from contracts.events import Event
from contracts.feedback import Acknowledged, FeedbackGiven, ItemRead
from services.common.db import add_counts, as_utc, insert_for, upsert_many
from services.common.ended_sessions import ended_sessions_table
from services.common.migrations import Migrations
from services.common.tallies import beyond_plan, chunk_table, sort_out, tally

STOCKHOLM = ZoneInfo("Europe/Stockholm")

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "insights", metadata)
#: Sessions ended by sign-out (the sign-in is served here): see services/common/ended_sessions.
ENDED_SESSIONS = ended_sessions_table(metadata, "insights_ended_sessions")

items = Table(
    "insights_items", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False, index=True),
    Column("type", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("read_more_url", Text, nullable=True),
    Column("acknowledge_by", DateTime(timezone=True), nullable=True),  # must-know news that asks to be acknowledged
)

targeted = Table(
    "insights_targeted", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("targeted", Integer, nullable=False),
)

#: Each delivery command's newest counts, as the channels announce them (`services/common/tallies.py`): reach
#: is counted, never kept per person.
deliveries = chunk_table(metadata, "insights_chunks")

answers = Table(
    "insights_answers", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("respondent", String(70), primary_key=True),
    Column("question", String(16), primary_key=True),
    Column("answer", String(8), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False, index=True),
)

def _once_per_respondent(name: str) -> Table:
    """What a respondent did once per event and group (the first time counts), and when."""
    return Table(
        name, metadata,
        Column("event_id", String(36), primary_key=True),
        Column("audience_id", String(64), primary_key=True),
        Column("respondent", String(70), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
    )


#: Counted "Läs mer" clicks.
reads = _once_per_respondent("insights_reads")
#: Acknowledgements of must-know news (and managers' confirmations): counted, never shown per person.
acknowledgements = _once_per_respondent("insights_acknowledgements")

#: Whose mail came back, per programme and group (a hash of the person, never the person): how many addresses
#: in each group bounced, hard or soft.
bounced = Table(
    "insights_bounces", metadata,
    Column("program", String(32), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("person_sha256", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # hard | soft (a hard one is never made soft again)
    Column("at", DateTime(timezone=True), nullable=False),
)

#: Managers first: each briefing (one per area of the managers) and the event it is about, so that a manager's
#: confirmation through it ("taken up at the workplace meeting") counts for that event and area.
briefings = Table(
    "insights_briefings", metadata,
    Column("briefing_id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=False, index=True),
    Column("area", String(64), nullable=False),
)

#: Counts of per-person rows the retention removed: (event, group, measure) → how many.
folded = Table(
    "insights_folded", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("measure", String(48), primary_key=True),
    Column("count", Integer, nullable=False),
)

#: Clicks kept until they are announced on the bus (a crash between the two loses nothing); then deleted.
outbox = Table(
    "insights_outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Counts of one (event, target group): measure → number. Measures: `targeted:<channel>`, `sent:<channel>`,
#: `failed:<channel>`, `read`, `acknowledged`, `<question>:<answer>`.
Counts = dict[tuple[str, str], Counter[str]]


@dataclass(frozen=True)
class Item:
    event_id: str
    program: str
    type: str
    title: str
    published_at: datetime
    read_more_url: str | None
    acknowledge_by: datetime | None = None


@dataclass(frozen=True)
class Pending:
    id: int
    topic: str
    key: str
    payload: str


class InsightsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # What it hears -------------------------------------------------------------------------------------------

    async def record_event(self, event: Event) -> None:
        read_more = getattr(event.payload, "read_more_url", None)
        async with self.engine.begin() as conn:
            await upsert_many(conn, items, [{
                "event_id": str(event.event_id), "program": event.program, "type": event.type,
                "title": event.payload.title[:300],
                "published_at": (event.published_at or event.occurred_at).astimezone(UTC),
                "read_more_url": str(read_more) if read_more else None,
                "acknowledge_by": event.acknowledge_by.astimezone(UTC) if event.acknowledge_by else None}],
                ("event_id",))

    async def record_plan(self, plan: DeliveryPlan) -> None:
        rows = [{"event_id": str(plan.event_id), "audience_id": target, "channel": channel, "targeted": n}
                for target, by_channel in plan.targeted.items() for channel, n in by_channel.items()]
        async with self.engine.begin() as conn:
            await upsert_many(conn, targeted, rows, ("event_id", "audience_id", "channel"))

    async def record_digest(self, sent: DigestSent) -> None:
        """A digest counts as an item of its own: its title, when, and what it targeted."""
        async with self.engine.begin() as conn:
            await upsert_many(conn, items, [{"event_id": str(sent.digest_id), "program": sent.program, "type": "digest",
                                             "title": sent.title, "published_at": sent.sent_at.astimezone(UTC),
                                             "read_more_url": None}], ("event_id",))
            await upsert_many(conn, targeted, [{"event_id": str(sent.digest_id), "audience_id": sent.audience_id,
                                                "channel": channel, "targeted": n}
                                               for channel, n in sent.targeted.items()],
                              ("event_id", "audience_id", "channel"))

    async def record_follow_up(self, sent: FollowUpSent) -> None:
        """What a follow-up (a reminder, an escalation step, a briefing) targeted, so that its deliveries count
        (under its own id: it is no item of its own); a briefing is also kept with its event and area."""
        async with self.engine.begin() as conn:
            if sent.kind == "briefing":
                await upsert_many(conn, briefings, [{"briefing_id": str(sent.follow_up_id),
                                                     "event_id": str(sent.event_id), "area": sent.area or ""}],
                                  ("briefing_id",))
            await upsert_many(conn, targeted, [{"event_id": str(sent.follow_up_id), "audience_id": sent.audience_id,
                                                "channel": channel, "targeted": n}
                                               for channel, n in sent.targeted.items()],
                              ("event_id", "audience_id", "channel"))

    async def record_outcomes(self, states: Sequence[DeliveryOutcomes]) -> list[tuple[DeliveryOutcomes, str]]:
        """Keep each chunk's newest counts; returns the announcements refused (a chunk larger than what was
        targeted to its group on its channel), which count nothing."""
        ids = sorted({str(s.event_id) for s in states})
        async with self.engine.begin() as conn:
            planned: dict[tuple[str, str, str], int] = {}
            for start in range(0, len(ids), 500):
                rows = (await conn.execute(select(targeted).where(targeted.c.event_id.in_(ids[start:start + 500])))).all()
                planned.update({(r.event_id, r.audience_id, r.channel): r.targeted for r in rows})
            counted, refused = sort_out(states, lambda s: beyond_plan(
                s, planned.get((str(s.event_id), s.audience_id, s.channel))))
            await tally(conn, deliveries, counted)
        return refused

    async def record_answers(self, given: Iterable[FeedbackGiven]) -> None:
        """A respondent's newest answer to each question; an older one arriving late changes nothing."""
        rows = [{"event_id": str(f.event_id), "audience_id": f.audience_id, "respondent": f.respondent,
                 "question": f.question, "answer": f.answer, "answered_at": f.answered_at.astimezone(UTC)}
                for f in given]
        if not rows:
            return
        async with self.engine.begin() as conn:
            stmt = insert_for(conn)(answers)
            stmt = stmt.on_conflict_do_update(
                index_elements=["event_id", "audience_id", "respondent", "question"],
                set_={"answer": stmt.excluded.answer, "answered_at": stmt.excluded.answered_at},
                where=stmt.excluded.answered_at >= answers.c.answered_at)
            await conn.execute(stmt, rows)

    async def record_acknowledgements(self, given: Iterable[Acknowledged]) -> None:
        """The first acknowledgement of each respondent counts; a repeat changes nothing."""
        await self._record_once(acknowledgements, ((a, a.acknowledged_at) for a in given))

    async def has_acknowledged(self, event_id: str, audience_id: str, respondent: str) -> bool:
        return await self._has(acknowledgements, event_id, audience_id, respondent)

    async def acknowledged_by_day(self, event_id: str) -> dict[str, dict[date, int]]:
        """Per target group, how many acknowledged on each Swedish day (only the days someone did)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(acknowledgements.c.audience_id, acknowledgements.c.at)
                                       .where(acknowledgements.c.event_id == event_id))).all()
        days: dict[str, dict[date, int]] = {}
        for audience_id, at in rows:
            day = as_utc(at).astimezone(STOCKHOLM).date()
            by_day = days.setdefault(audience_id, {})
            by_day[day] = by_day.get(day, 0) + 1
        return days

    async def record_bounces(self, notices: Iterable[AddressBounced]) -> int:
        """Each person's address once per group, as it last bounced (hard wins); a bounce of news this service
        never heard of is left out (returns how many were)."""
        rows, unknown = [], 0
        async with self.engine.begin() as conn:
            for n in notices:
                program = (await conn.execute(select(items.c.program).where(
                    items.c.event_id == str(n.event_id)))).scalar()
                if program is None:
                    unknown += 1
                    continue
                rows.append({"program": program, "audience_id": n.audience_id, "kind": n.kind,
                             "person_sha256": hashlib.sha256(n.person_id.encode()).hexdigest(),
                             "at": n.bounced_at.astimezone(UTC)})
            if rows:
                stmt = insert_for(conn)(bounced)
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["program", "audience_id", "person_sha256"],
                    set_={"kind": stmt.excluded.kind, "at": stmt.excluded.at},
                    where=bounced.c.kind != "hard"), rows)
        return unknown

    async def bounces(self, program: str) -> dict[str, Counter[str]]:
        """Per group, how many addresses bounced hard and soft."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(bounced.c.audience_id, bounced.c.kind, func.count())
                                       .where(bounced.c.program == program)
                                       .group_by(bounced.c.audience_id, bounced.c.kind))).all()
        out: dict[str, Counter[str]] = {}
        for audience_id, kind, n in rows:
            out.setdefault(audience_id, Counter())[kind] += int(n)
        return out

    async def briefing(self, briefing_id: str) -> str | None:
        """The event a managers' briefing is about, if it is one."""
        async with self.engine.connect() as conn:
            return (await conn.execute(select(briefings.c.event_id).where(
                briefings.c.briefing_id == briefing_id))).scalar()

    async def briefed(self, event_id: str) -> list[tuple[str, int, int]]:
        """Managers first, per area: (area, managers briefed, of them confirmed "taken up at the workplace meeting")."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(briefings.c.briefing_id, briefings.c.area)
                                       .where(briefings.c.event_id == event_id))).all()
            out = []
            for briefing_id, area in rows:
                asked = (await conn.execute(select(func.coalesce(func.sum(targeted.c.targeted), 0)).where(
                    targeted.c.event_id == briefing_id))).scalar_one()
                confirmed = (await conn.execute(select(func.count()).select_from(acknowledgements).where(
                    acknowledgements.c.event_id == briefing_id))).scalar_one()
                out.append((area, int(asked), int(confirmed)))
        return sorted(out)

    async def record_reads(self, seen: Iterable[ItemRead]) -> None:
        await self._record_once(reads, ((r, r.at) for r in seen))

    async def _record_once(self, table: Table, done: Iterable[tuple[ItemRead | Acknowledged, datetime]]) -> None:
        rows = [{"event_id": str(d.event_id), "audience_id": d.audience_id, "respondent": d.respondent,
                 "at": at.astimezone(UTC)} for d, at in done]
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(insert_for(conn)(table).on_conflict_do_nothing(), rows)

    async def _has(self, table: Table, event_id: str, audience_id: str, respondent: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(table.c.at).where(
                table.c.event_id == event_id, table.c.audience_id == audience_id,
                table.c.respondent == respondent))).first() is not None

    # The outbox ----------------------------------------------------------------------------------------------

    async def keep(self, topic: str, key: str, payload: str) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(outbox).values(topic=topic, key=key, payload=payload,
                                                              created_at=datetime.now(UTC)))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def unannounced(self, limit: int = 500) -> list[Pending]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                                       .order_by(outbox.c.id)
                                       .limit(limit))).all()
        return [Pending(*r) for r in rows]

    async def announced(self, ids: Sequence[int]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))

    async def answer_of(self, event_id: str, audience_id: str, respondent: str, question: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(answers.c.answer).where(
                answers.c.event_id == event_id, answers.c.audience_id == audience_id,
                answers.c.respondent == respondent, answers.c.question == question))).scalar()

    async def has_read(self, event_id: str, audience_id: str, respondent: str) -> bool:
        return await self._has(reads, event_id, audience_id, respondent)

    # What it shows -------------------------------------------------------------------------------------------

    async def item(self, event_id: str) -> Item | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(items).where(items.c.event_id == event_id))).first()
        return _item(row) if row is not None else None

    async def items(self, program: str) -> list[Item]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(items).where(items.c.program == program)
                                       .order_by(items.c.published_at.desc()))).all()
        return [_item(r) for r in rows]

    async def program_counts(self, program: str) -> tuple[list[Item], Counts]:
        """A programme's items, newest first, and every measure of them."""
        found = await self.items(program)
        return found, await self.counts([i.event_id for i in found])

    async def counts(self, event_ids: Sequence[str]) -> Counts:
        """Every measure of the given events, per target group: what is kept per person, counted, plus what
        the retention has folded."""
        out: Counts = {}
        if not event_ids:
            return out

        def add(rows: Iterable[Any]) -> None:
            for event_id, audience_id, measure, n in rows:
                if n:  # a chunk's sum may be nothing
                    out.setdefault((event_id, audience_id), Counter())[measure] += int(n)

        e, a = "event_id", "audience_id"
        async with self.engine.connect() as conn:
            for start in range(0, len(event_ids), 500):
                ids = event_ids[start:start + 500]
                add(await conn.execute(select(targeted.c[e], targeted.c[a], literal("targeted:") + targeted.c.channel,
                                              targeted.c.targeted).where(targeted.c[e].in_(ids))))
                for status in ("sent", "failed"):
                    add(await conn.execute(
                        select(deliveries.c[e], deliveries.c[a], literal(f"{status}:") + deliveries.c.channel,
                               func.sum(deliveries.c[status])).where(deliveries.c[e].in_(ids))
                        .group_by(deliveries.c[e], deliveries.c[a], deliveries.c.channel)))
                add(await conn.execute(select(reads.c[e], reads.c[a], literal("read"), func.count())
                                       .where(reads.c[e].in_(ids)).group_by(reads.c[e], reads.c[a])))
                add(await conn.execute(select(acknowledgements.c[e], acknowledgements.c[a], literal("acknowledged"),
                                              func.count()).where(acknowledgements.c[e].in_(ids))
                                       .group_by(acknowledgements.c[e], acknowledgements.c[a])))
                add(await conn.execute(
                    select(answers.c[e], answers.c[a], answers.c.question + literal(":") + answers.c.answer,
                           func.count()).where(answers.c[e].in_(ids))
                    .group_by(answers.c[e], answers.c[a], answers.c.question, answers.c.answer)))
                add(await conn.execute(select(folded.c[e], folded.c[a], folded.c.measure, folded.c.count)
                                       .where(folded.c[e].in_(ids))))
        return out

    # Retention -----------------------------------------------------------------------------------------------

    async def fold(self, before: datetime) -> int:
        """Move every per-person row older than `before` (reads, answers) into the per-group counts, in one
        transaction; reach is counted per chunk already."""
        cutoff = before.astimezone(UTC)
        e, a = "event_id", "audience_id"
        sources = (
            (reads, reads.c.at, literal("read"), ()),
            (acknowledgements, acknowledgements.c.at, literal("acknowledged"), ()),
            (answers, answers.c.answered_at, answers.c.question + literal(":") + answers.c.answer,
             (answers.c.question, answers.c.answer)),
        )
        moved = 0
        async with self.engine.begin() as conn:
            for table, at, measure, by in sources:
                old = at < cutoff
                query = select(table.c[e], table.c[a], measure, func.count()).where(old)
                rows = (await conn.execute(query.group_by(table.c[e], table.c[a], *by))).all()
                await add_counts(conn, folded, [{"event_id": ev, "audience_id": au, "measure": m, "count": n}
                                                for ev, au, m, n in rows], ("event_id", "audience_id", "measure"))
                moved += (await conn.execute(delete(table).where(old))).rowcount or 0
        return moved


def _item(row: Any) -> Item:
    return Item(row.event_id, row.program, row.type, row.title, as_utc(row.published_at), row.read_more_url,
                as_utc(row.acknowledge_by) if row.acknowledge_by is not None else None)
