"""The directory import's report: what an uploaded directory (CSV) would change, read before it is applied.

The tailor owns the directory; the gateway asks it, for a person or a system with the admin role, to check a
file and later to apply that same file. What goes between them over HTTP is this report, never the people.
"""

from pydantic import Field

from contracts.base import Contract

#: The largest directory file taken (a region's 47 000 staff are about 6 MB).
MAX_DIRECTORY_BYTES = 20 * 1024 * 1024


class RejectedLine(Contract):
    line: int = Field(ge=1, description="the file's line number (the header is line 1)")
    recipient_id: str = Field(max_length=200, description="the row's id, as written (may be empty)")
    reason: str = Field(max_length=500)


class DirectoryReport(Contract):
    """What the file holds and what applying it would do. `import_id` is set only when the file can be applied
    as it is (no row rejected); applying it needs a second, confirming request."""

    import_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    problem: str | None = Field(default=None, max_length=500, description="why the file as a whole is refused")
    rows: int = Field(ge=0, description="rows read, besides the header")
    rejected: list[RejectedLine] = Field(max_length=1000, description="the first 1000 rows refused, with why")
    rejected_count: int = Field(ge=0)
    added: int = Field(ge=0)
    changed: int = Field(ge=0)
    removed: int = Field(ge=0)
    unchanged: int = Field(ge=0)


class DirectoryApplied(Contract):
    import_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    people: int = Field(ge=0, description="people in the directory now")


class UndeliverableAddress(Contract):
    """A person whose address takes no mail (it bounced hard, or soft too many times): left out of mail until
    the directory gives them a new address. Shown to an admin only."""

    id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    reason: str = Field(max_length=400, description="e.g. hard bounce 5.1.1, or 3 soft bounces (last 4.2.2)")


class UndeliverableAddresses(Contract):
    addresses: tuple[UndeliverableAddress, ...]
