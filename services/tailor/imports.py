"""Directory imports in two steps: a file is checked and its report shown (rows read, rejected with line and
reason, people added, changed and removed); only a second, confirming request applies that same file. The file
waits in the tailor's own table meanwhile (a day at most), so that the person confirms what they read."""

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from contracts.directory import DirectoryApplied, DirectoryReport, RejectedLine
from services.tailor.directory import directory_change, parse_recipients_csv
from services.tailor.store import TailorStore

#: How long a checked file waits for its confirmation.
PENDING_FOR = timedelta(days=1)
#: The rejected rows a report lists (it counts them all).
LISTED_REJECTIONS = 1000


class UnknownImport(LookupError):
    """No checked file of that id is waiting (never checked, already applied, or too old)."""


class DirectoryImports:
    def __init__(self, store: TailorStore, areas: Iterable[str],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store, self.areas, self.clock = store, frozenset(areas), clock

    async def check(self, text: str, by: str) -> DirectoryReport:
        """What applying the file would do; it waits to be applied only when every row is valid."""
        await self.purge()
        try:
            parsed = parse_recipients_csv(text.removeprefix("\ufeff"), self.areas)
        except ValueError as exc:
            return DirectoryReport(problem=str(exc), rows=0, rejected=[], rejected_count=0, added=0, changed=0,
                                   removed=0, unchanged=0)
        change = directory_change(await self.store.full_directory(), parsed.accepted)
        import_id = None
        if not parsed.rejected and parsed.accepted:
            import_id = secrets.token_hex(16)
            await self.store.keep_import(import_id, text, by)
        return DirectoryReport(
            import_id=import_id, problem=None if parsed.accepted or parsed.rejected else "the file has no rows",
            rows=len(parsed.accepted) + len(parsed.rejected),
            rejected=[RejectedLine(line=r.line, recipient_id=r.recipient_id[:200], reason=r.reason)
                      for r in parsed.rejected[:LISTED_REJECTIONS]],
            rejected_count=len(parsed.rejected), added=change.added, changed=change.changed, removed=change.removed,
            unchanged=change.unchanged)

    async def apply(self, import_id: str) -> DirectoryApplied:
        """Replace the directory by the checked file, whole, once."""
        text = await self.store.pending_import(import_id, self.clock() - PENDING_FOR)
        if text is None:
            raise UnknownImport(import_id)
        parsed = parse_recipients_csv(text.removeprefix("\ufeff"), self.areas)
        people = await self.store.replace_directory(parsed.accepted)
        await self.store.drop_imports(import_id=import_id)
        return DirectoryApplied(import_id=import_id, people=people)

    async def purge(self) -> int:
        return await self.store.drop_imports(before=self.clock() - PENDING_FOR)
