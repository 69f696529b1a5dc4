"""`budkavle digest run`: a digest now, for a programme's groups (or one), for a period (by default the last
whole one of each group's cadence). The same `schedule.due` the schedule says, marked as asked for."""

from collections.abc import Mapping
from datetime import datetime

from contracts import topics
from contracts.schedule import DigestAsker, DigestDue
from programs import Program
from services.common.bus import Bus, create_broker
from services.scheduler.periods import last_whole_period, parse_period


def digests_to_run(programs: Mapping[str, Program], program: str, audience_id: str | None, period: str | None,
                   now: datetime) -> list[DigestDue]:
    """What `digest run` asks for; ValueError with the reason for an unknown programme, group or period."""
    config = programs.get(program)
    if config is None:
        raise ValueError(f"unknown programme {program!r} (known: {', '.join(sorted(programs))})")
    if audience_id is not None:
        audience = config.audience(audience_id)
        if audience is None:
            raise ValueError(f"programme {program!r} has no target group {audience_id!r}")
        groups = [audience]
    else:
        groups = [a for a in config.audiences if a.digest != "none"]
    chosen = parse_period(period) if period is not None else None
    dues = []
    for group in groups:
        if chosen is None and group.digest == "none":
            raise ValueError(f"target group {group.id!r} has no digest cadence: give --period (2026-11 or 2026-W47)")
        dues.append(DigestDue(program=program, audience_id=group.id, due_at=now,
                              period=chosen or last_whole_period(group.digest, now),  # type: ignore[arg-type]
                              asked_by=DigestAsker.OPERATOR))
    return dues


async def publish_dues(bootstrap: str, dues: list[DigestDue]) -> None:
    broker = create_broker(bootstrap, "budkavle-cli")
    await broker.connect()
    try:
        bus = Bus(broker)
        for due in dues:
            await bus.publish(topics.SCHEDULE_DUE, due, due.bus_key)
    finally:
        await broker.stop()
