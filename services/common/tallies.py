"""Counts where counts are enough: what a reader of the outcome topic keeps of each delivery command.

A channel announces a command's whole state (`DeliveryOutcomes`: sent, failed and deferred counted), again
whenever it changes. A reader keeps one row per chunk and lets a newer state replace it: a delivery only
moves forward, so the state with more ended deliveries is the newer one (with as many, the later one).
A redelivered or repeated announcement therefore counts once, and one that arrives late never undoes a
newer one. The channel's ledger stays the one per-person record of who was sent what.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.deliveries import DeliveryOutcomes
from services.common.db import as_utc, upsert_many

#: A chunk's identity: its event, target group, channel and command.
ChunkKey = tuple[str, str, str, str]
KEY_COLUMNS = ("event_id", "audience_id", "channel", "chunk")


def chunk_table(metadata: MetaData, name: str) -> Table:
    """One row per delivery command: its size and its newest counts."""
    return Table(
        name, metadata,
        Column("event_id", String(36), primary_key=True),
        Column("audience_id", String(64), primary_key=True),
        Column("channel", String(32), primary_key=True),
        Column("chunk", String(300), primary_key=True),
        Column("size", Integer, nullable=False),
        Column("sent", Integer, nullable=False),
        Column("failed", Integer, nullable=False),
        Column("deferred", Integer, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
    )


def key_of(state: DeliveryOutcomes) -> ChunkKey:
    return str(state.event_id), state.audience_id, state.channel, state.chunk


@dataclass
class Tallied:
    """What a batch of announcements changed: the states kept (each newer than what was kept before) and,
    per event, how many more of its deliveries have ended."""

    kept: list[DeliveryOutcomes] = field(default_factory=list)
    ended: dict[str, int] = field(default_factory=dict)


def newest(states: Sequence[DeliveryOutcomes]) -> dict[ChunkKey, DeliveryOutcomes]:
    """The newest state of each chunk among some announcements."""
    best: dict[ChunkKey, DeliveryOutcomes] = {}
    for state in states:
        key = key_of(state)
        if key not in best or _order(state.ended, state.at) >= _order(best[key].ended, best[key].at):
            best[key] = state
    return best


async def tally(conn: AsyncConnection, table: Table, states: Sequence[DeliveryOutcomes]) -> Tallied:
    """Keep each chunk's newest state in `table`, on the caller's transaction."""
    best = newest(states)
    if not best:
        return Tallied()
    before: dict[ChunkKey, tuple[int, datetime]] = {}
    events = sorted({k[0] for k in best})
    chunks = sorted({k[3] for k in best})
    for start in range(0, len(chunks), 500):
        rows = (await conn.execute(select(table.c.event_id, table.c.audience_id, table.c.channel, table.c.chunk,
                                          table.c.sent, table.c.failed, table.c.at)
                                   .where(table.c.event_id.in_(events), table.c.chunk.in_(chunks[start:start + 500])))
                ).all()
        before.update({(r.event_id, r.audience_id, r.channel, r.chunk): (r.sent + r.failed, as_utc(r.at)) for r in rows})
    done = Tallied()
    for key, state in best.items():
        old = before.get(key)
        if old is not None and _order(state.ended, state.at) < _order(*old):
            continue  # an older state, arriving late
        done.kept.append(state)
        done.ended[key[0]] = done.ended.get(key[0], 0) + state.ended - (old[0] if old else 0)
    await upsert_many(conn, table, [{"event_id": str(s.event_id), "audience_id": s.audience_id, "channel": s.channel,
                                     "chunk": s.chunk, "size": s.size, "sent": s.sent, "failed": s.failed,
                                     "deferred": s.deferred, "at": s.at} for s in done.kept], KEY_COLUMNS)
    return done


def beyond_plan(state: DeliveryOutcomes, targeted: int | None) -> str | None:
    """Why an announcement cannot be counted against what the plan targeted to its group on its channel
    (None: it can)."""
    if targeted is not None and state.size > targeted:
        return (f"a {state.channel} chunk of {state.size} deliveries to {state.audience_id}, but the plan targeted "
                f"{targeted}: nothing counted")
    return None


def sort_out(states: Iterable[DeliveryOutcomes], why_not: Callable[[DeliveryOutcomes], str | None]
             ) -> tuple[list[DeliveryOutcomes], list[tuple[DeliveryOutcomes, str]]]:
    """The states that can be counted, and those that cannot, each with `why_not`'s reason."""
    counted: list[DeliveryOutcomes] = []
    refused: list[tuple[DeliveryOutcomes, str]] = []
    for state in states:
        reason = why_not(state)
        if reason is None:
            counted.append(state)
        else:
            refused.append((state, reason))
    return counted, refused


def _order(ended: int, at: datetime) -> tuple[int, datetime]:
    return ended, as_utc(at)
