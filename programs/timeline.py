"""The programme's timeline as it stands: the plan's baseline (the programme file) with each go-live
update laid over it. Pure; the status page and every digest show it, even before any event is published."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from programs.labels import GOLIVE_STATUS, sv_date
from programs.model import Baseline


@dataclass(frozen=True)
class AreaUpdate:
    """What a `golive.milestone` said about an area (oldest first when several are laid over the plan)."""

    area: str
    planned_date: date
    state: str
    title: str
    wave: str | None = None
    source: str | None = None  # the event's id, to link to its item


@dataclass(frozen=True)
class Step:
    title: str
    when: str
    planned_date: date
    state: str
    area: str | None = None
    source: str | None = None

    @property
    def state_label(self) -> str:
        return GOLIVE_STATUS.get(self.state, self.state)


def current_timeline(baseline: Baseline | None, updates: Iterable[AreaUpdate]) -> list[Step]:
    """The baseline's steps in date order, each area's wave updated by the go-live news about it.

    An update names its wave (a timeline id) or else applies to its area's earliest wave not yet completed;
    news of an area the plan does not have becomes a step of its own.
    """
    steps = {e.id: Step(e.title, e.when, e.planned_date, e.state, e.area) for e in (baseline.timeline if baseline else ())}
    extra: dict[str, Step] = {}
    for u in updates:
        target = u.wave if u.wave in steps else _open_wave(steps, u.area)
        when = sv_date(u.planned_date)
        if target is not None:
            steps[target] = replace(steps[target], planned_date=u.planned_date, when=when, state=u.state,
                                    source=u.source)
        else:
            extra[u.area] = Step(u.title, when, u.planned_date, u.state, u.area, u.source)
    return sorted([*steps.values(), *extra.values()], key=lambda s: s.planned_date)


def _open_wave(steps: dict[str, Step], area: str) -> str | None:
    waves = sorted(((s.planned_date, key) for key, s in steps.items() if s.area == area), key=lambda w: w[0])
    open_ones = [key for _, key in waves if steps[key].state != "completed"]
    candidates = open_ones or [key for _, key in waves][-1:]  # all done: the news is about the last wave
    return candidates[0] if candidates else None
