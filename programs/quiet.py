"""A target group's quiet hours: the part of each local day in which nothing but a must-know alert is pushed
to its people (DESIGN.md, Reaching people). Pure: an instant in, an answer out, in the group's time zone
(Europe/Stockholm unless the programme file says another), so a daylight-saving change moves the hours with
the local clock.

In a programme file: `quiet_hours: "21:00-07:00"`, or with a zone, `quiet_hours: "21:00-07:00 Europe/Oslo"`.
"""

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

DEFAULT_ZONE = "Europe/Stockholm"

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*(?:\s(\S+))?\s*$")


class QuietHours(BaseModel):
    """From `start` to `end`, local time; a range whose end is earlier than its start runs over midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time
    time_zone: str = DEFAULT_ZONE

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        m = _RANGE.match(value)
        if m is None:
            raise ValueError(f"quiet hours {value!r} are not a range: write e.g. \"21:00-07:00\" "
                             f"(optionally followed by a time zone, e.g. \"21:00-07:00 Europe/Stockholm\")")
        start_h, start_m, end_h, end_m = (int(g) for g in m.groups()[:4])
        for h, mi in ((start_h, start_m), (end_h, end_m)):
            if not (0 <= h <= 23 and 0 <= mi <= 59):
                raise ValueError(f"quiet hours {value!r}: {h:02d}:{mi:02d} is not a time of day")
        return {"start": time(start_h, start_m), "end": time(end_h, end_m), "time_zone": m[5] or DEFAULT_ZONE}

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone (e.g. Europe/Stockholm)") from exc
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> "QuietHours":
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time: an empty (or a whole day's) range")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local times; give the zone as time_zone")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def ends_after(self, instant: datetime) -> datetime | None:
        """When the quiet hours that `instant` falls in end (an aware instant), or None when it is outside them."""
        local = instant.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        day = local.date()
        if self.start < self.end:
            inside = self.start <= clock < self.end
        else:  # over midnight: the evening's part ends tomorrow
            inside = clock >= self.start or clock < self.end
            if clock >= self.start:
                day += timedelta(days=1)
        if not inside:
            return None
        return datetime.combine(day, self.end, self.zone).astimezone(UTC)

    def contains(self, instant: datetime) -> bool:
        return self.ends_after(instant) is not None
