"""The follow-up figures, from counts to what the page shows: pure, no I/O.

Per target group (or per event, or per month) the four questions of the communication plan (seed 000):
reached (delivered of targeted, per channel), read (counted "Läs mer" of those reached by a person
channel), understood and involved (the share answering "ja"). Answers are shown only where at least
MIN_ANSWERS people answered; fewer, and the row says "för få svar" and shows no answer counts at all, so
that no one's answer can be worked out.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from contracts.feedback import ANSWERS

MIN_ANSWERS = 5
TOO_FEW = "för få svar"
STOCKHOLM = ZoneInfo("Europe/Stockholm")

#: The measures charted, in order, with their Swedish names.
MEASURES: tuple[tuple[str, str], ...] = (("reached", "Nådda"), ("read", "Läst"), ("understood", "Förstod"),
                                         ("involved", "Delaktiga"))


@dataclass(frozen=True)
class Reach:
    targeted: int
    sent: int
    failed: int


@dataclass(frozen=True)
class Row:
    """One line of a table and one category of a chart: a group, an event or a month."""

    key: str
    label: str
    counts: Counter[str]

    def channels(self, names: Sequence[str]) -> dict[str, Reach]:
        c = self.counts
        return {n: Reach(c[f"targeted:{n}"], c[f"sent:{n}"], c[f"failed:{n}"]) for n in names
                if c[f"targeted:{n}"] or c[f"sent:{n}"] or c[f"failed:{n}"]}

    @property
    def targeted(self) -> int:
        return sum(n for m, n in self.counts.items() if m.startswith("targeted:"))

    @property
    def sent(self) -> int:
        return sum(n for m, n in self.counts.items() if m.startswith("sent:"))

    @property
    def reads(self) -> int:
        return self.counts["read"]

    def answered(self, question: str) -> int:
        return sum(self.counts[f"{question}:{a}"] for a in ANSWERS[question])

    def answers(self, question: str) -> dict[str, int] | None:
        """The answers to `question`, or None when fewer than MIN_ANSWERS answered."""
        if self.answered(question) < MIN_ANSWERS:
            return None
        return {a: self.counts[f"{question}:{a}"] for a in ANSWERS[question]}

    def share(self, measure: str) -> float | None:
        """The measure as a percentage, or None where there is nothing to divide by (or too few answers)."""
        if measure == "reached":
            return _percent(self.sent, self.targeted)
        if measure == "read":
            people = self.counts["sent:email"]
            return _percent(min(self.reads, people), people)
        got = self.answers(measure)
        return None if got is None else _percent(got["ja"], sum(got.values()))


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def merged(counters: Iterable[Counter[str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for c in counters:
        out.update(c)
    return out


def by_group(counts: Mapping[tuple[str, str], Counter[str]], event_id: str,
             names: Mapping[str, str]) -> list[Row]:
    """One event's rows, one per target group (in the programme's order, then any other target)."""
    mine = {audience: c for (event, audience), c in counts.items() if event == event_id}
    order = [a for a in names if a in mine] + sorted(a for a in mine if a not in names)
    return [Row(a, names.get(a, _OTHER_TARGETS.get(a, a)), mine[a]) for a in order]


def by_event(counts: Mapping[tuple[str, str], Counter[str]], events: Sequence[tuple[str, str]]) -> list[Row]:
    """One row per event (id, label), every group's counts together."""
    return [Row(e, label, merged(c for (event, _a), c in counts.items() if event == e)) for e, label in events]


def month_of(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%Y-%m")


def by_month(counts: Mapping[tuple[str, str], Counter[str]], published: Mapping[str, datetime],
             audience_id: str) -> list[Row]:
    """One group over time: a row per month of publication, its events' counts together, oldest first."""
    months: dict[str, Counter[str]] = {}
    for (event, audience), c in counts.items():
        if audience == audience_id and event in published:
            months.setdefault(month_of(published[event]), Counter()).update(c)
    return [Row(m, m, months[m]) for m in sorted(months)]


#: Targets that are not target groups: the programme-wide channels.
_OTHER_TARGETS = {"intranet": "Intranätet (alla)"}


TOO_FEW_PEOPLE = "för få mottagare"


@dataclass(frozen=True)
class Acknowledgement:
    """One group's acknowledgements of must-know news: its people reached by email, and the share of them who
    acknowledged, in all and at the end of each day someone did. None where fewer than MIN_ANSWERS were asked
    (then a share would tell who had not acknowledged)."""

    key: str
    label: str
    asked: int
    share: float | None
    over_time: tuple[tuple[date, float], ...]


def acknowledgements(rows: Sequence[Row], by_day: Mapping[str, Mapping[date, int]]) -> list[Acknowledgement]:
    """Per group (the rows of an event), how many of those asked by email acknowledged, over time."""
    out: list[Acknowledgement] = []
    for row in rows:
        asked = row.counts["targeted:email"]
        if asked < MIN_ANSWERS:
            out.append(Acknowledgement(row.key, row.label, asked, None, ()))
            continue
        total, over_time = 0, []
        for day, n in sorted(by_day.get(row.key, {}).items()):
            total += n
            over_time.append((day, _share(total, asked)))
        out.append(Acknowledgement(row.key, row.label, asked, _share(row.counts["acknowledged"], asked),
                                   tuple(over_time)))
    return out


def _share(part: int, whole: int) -> float:
    """A share of at most 100 %: someone may acknowledge through the group's link as well as their own."""
    return min(100.0, round(100.0 * part / whole, 1))
