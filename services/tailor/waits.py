"""Deliveries that wait for an instant: the end of a group's quiet hours (rule 10), or the staff's turn after
their managers (managers first). The plan says which of its deliveries wait until when (`Plan.waiting`); the
tailor emits only those due, tells the scheduler each instant, and emits the rest when it comes.

Pure but for `announce`, which says the instants on the bus.
"""

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from contracts import topics
from contracts.deliveries import DeliveriesScheduled
from contracts.events import Event
from services.common.bus import Bus
from services.tailor.planning import Plan

log = logging.getLogger(__name__)


def due_now(plan: Plan, now: datetime) -> Plan:
    """The plan without the deliveries that still wait at `now`."""
    late = {(name, target) for name, by_target in plan.waiting.items()
            for target, until in by_target.items() if until > now}
    if not late:
        return plan
    targets = {name: {target: people for target, people in by_target.items() if (name, target) not in late}
               for name, by_target in plan.targets.items()}
    return replace(plan, targets={name: by_target for name, by_target in targets.items() if by_target})


def due_by(waiting: Mapping[str, Mapping[str, datetime]], now: datetime) -> dict[str, set[str]]:
    """Channel → the targets whose wait has ended by `now`."""
    return {name: {t for t, until in by_target.items() if until <= now} for name, by_target in waiting.items()}


async def announce(bus: Bus, event: Event, waiting: Mapping[str, Mapping[str, datetime]], now: datetime) -> None:
    """Tell the scheduler each instant some of the event's deliveries wait for: it says when it comes."""
    by_until: dict[datetime, set[str]] = {}
    for by_target in waiting.values():
        for target, until in by_target.items():
            if until > now:
                by_until.setdefault(until, set()).add(target)
    for until, audiences in sorted(by_until.items()):
        scheduled = DeliveriesScheduled(event_id=event.event_id, program=event.program, at=until,
                                        audiences=tuple(sorted(audiences)), scheduled_at=now,
                                        reason="managers first" if event.cascade else "quiet hours")
        await bus.publish(topics.DELIVERIES_SCHEDULED, scheduled, scheduled.bus_key)
        log.info("deliveries wait (quiet hours, managers first)", extra={
            "event_id": str(event.event_id), "until": until.isoformat(), "groups": len(audiences)})
