"""A directory file is checked before it is applied: its report counts the rows, lists each rejected row with
its line and reason, and says who would be added, changed and removed; nothing changes until the same file is
applied by its id, once."""

from dataclasses import replace

import pytest

from services.tailor.directory import Recipient, directory_change, recipients_to_csv
from services.tailor.imports import UnknownImport
from services.tailor.service import Tailor


def test_a_change_of_directory_is_counted_person_by_person() -> None:
    anna = Recipient(id="a", name="Anna", email="anna@example.se")
    bo = Recipient(id="b", name="Bo", email="bo@example.se")
    cia = Recipient(id="c", name="Cia", email="cia@example.se")
    change = directory_change([anna, bo], [replace(anna, role="chef"), cia])
    assert (change.added, change.changed, change.removed, change.unchanged) == (1, 1, 1, 0)


async def test_a_file_with_a_bad_row_reports_its_line_and_reason_and_can_never_be_applied(
        tailor: Tailor, small_directory: list[Recipient]) -> None:
    text = recipients_to_csv(small_directory[:3]) + "x1,Namn Namnsson,inte-en-adress,,,,,,\n,Utan Id,u@example.se,,,,,,\n"
    report = await tailor.imports.check(text, "admin@budkavle.example")
    assert report.import_id is None and report.problem is None
    assert (report.rows, report.rejected_count) == (5, 2)
    assert [(r.line, r.recipient_id, r.reason) for r in report.rejected] == [
        (5, "x1", "bad email address"), (6, "", "id missing or has characters other than letters, digits, . _ : -")]
    assert await tailor.store.directory_size() == len(small_directory)  # nothing changed


async def test_a_good_file_is_applied_only_when_confirmed_and_only_once(
        tailor: Tailor, small_directory: list[Recipient]) -> None:
    await tailor.store.replace_directory(fvm_only := [r for r in small_directory  # the tailor here knows FVM alone
                                                      if not r.area or r.area in tailor.programs["fvm"].areas])
    kept = fvm_only[1:]
    changed = [replace(kept[0], name="Nytt Namn"), *kept[1:], Recipient(id="ny-1", name="Ny", email="ny@example.se")]
    report = await tailor.imports.check(recipients_to_csv(changed), "admin@budkavle.example")
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, len(kept) - 1)
    assert report.import_id is not None and report.rejected == []
    assert await tailor.store.directory_size() == len(fvm_only)  # checked, not applied
    applied = await tailor.imports.apply(report.import_id)
    assert applied.people == len(changed) == await tailor.store.directory_size()
    with pytest.raises(UnknownImport):
        await tailor.imports.apply(report.import_id)


@pytest.mark.parametrize(("text", "problem"), [
    ("namn,adress\nA,a@example.se\n", "CSV header lacks required columns ['id', 'name', 'email']"),
    ("id,name,email\n", "the file has no rows"),
])
async def test_a_file_that_is_no_directory_is_refused_whole(tailor: Tailor, text: str, problem: str) -> None:
    report = await tailor.imports.check(text, "admin@budkavle.example")
    assert report.import_id is None and report.problem is not None and report.problem.startswith(problem)


@pytest.mark.parametrize("text", ["R<ö\x8aFOi\x81\rzÌÕ", 'id,name,email\nx1,"Anna,a@example.se\n', "id,na\x00me,email\n"])
async def test_a_file_that_is_not_csv_at_all_is_refused_whole_never_an_error(tailor: Tailor, text: str) -> None:
    """Found by Schemathesis: a lone carriage return in a field (it was a server error), an open quote, a NUL
    byte: refused whole, or row by row, and never applicable."""
    report = await tailor.imports.check(text, "admin@budkavle.example")
    assert report.import_id is None and (report.problem is not None or report.rejected_count == 1)
