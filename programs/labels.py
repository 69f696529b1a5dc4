"""Swedish labels and dates shared by every service that shows an event to people."""

from collections.abc import Iterator, Mapping
from datetime import date, datetime

from contracts.events import EVENT_TYPES

MONTHS = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
          "oktober", "november", "december")
GOLIVE_STATUS = {"planned": "Planerad", "rescheduled": "Ny tidpunkt", "started": "Införandet har startat",
                 "completed": "Genomförd"}
#: What a digest is called where an event type's label would stand.
DIGEST_LABEL = "Lägessummering"


class _TypeLabels(Mapping[str, str]):
    """Each registered event type's Swedish label (`contracts.events.EVENT_TYPES`), and the digest's: read at
    each use, so that a type registered later has its label too."""

    def _all(self) -> dict[str, str]:
        return {**{name: t.label for name, t in EVENT_TYPES.items()}, "digest": DIGEST_LABEL}

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


TYPE_LABELS: Mapping[str, str] = _TypeLabels()


def sv_date(value: date | datetime | None) -> str:
    """`17 maj 2022`."""
    if value is None:
        return ""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def sv_period(label: str) -> str:
    """A digest period's label in Swedish: `2026-11` → `november 2026`, `2026-W47` → `vecka 47 2026`."""
    year, rest = label.split("-", 1)
    return f"vecka {int(rest[1:])} {year}" if rest.startswith("W") else f"{MONTHS[int(rest) - 1]} {year}"
