"""Swedish labels and dates shared by every service that shows an event to people."""

from datetime import date, datetime

MONTHS = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
          "oktober", "november", "december")
GOLIVE_STATUS = {"planned": "Planerad", "rescheduled": "Ny tidpunkt", "started": "Införandet har startat",
                 "completed": "Genomförd"}
TYPE_LABELS = {"steering.decision": "Styrgruppsbeslut", "design.decision": "Designbeslut",
               "golive.milestone": "Införande", "status.update": "Lägesrapport",
               "newsletter.issue": "Nyhetsbrev", "digest": "Lägessummering"}


def sv_date(value: date | datetime | None) -> str:
    """`17 maj 2022`."""
    if value is None:
        return ""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def sv_period(label: str) -> str:
    """A digest period's label in Swedish: `2026-11` → `november 2026`, `2026-W47` → `vecka 47 2026`."""
    year, rest = label.split("-", 1)
    return f"vecka {int(rest[1:])} {year}" if rest.startswith("W") else f"{MONTHS[int(rest) - 1]} {year}"
