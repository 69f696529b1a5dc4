"""The audit register's chain (pure): each row's hash covers the row before it, so a row changed, inserted or
removed is named by `verify`."""

from typing import Any

from services.gateway.audit import GENESIS, row_hash, verify


def register(n: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        row: dict[str, Any] = {"seq": seq, "at": f"2026-11-30T08:0{seq}:00+00:00", "actor": "redaktor@fvm.example",
                               "action": "publish", "program": "fvm", "target": f"event-{seq}",
                               "content_hash": "ab" * 32, "detail": "design.decision", "prev_hash": prev}
        row["hash"] = prev = row_hash(row)
        rows.append(row)
    return rows, {"seq": n, "hash": prev}


def test_a_whole_register_verifies() -> None:
    assert verify(*register(5)) is None
    assert verify([], None) is None


def test_a_changed_row_is_named() -> None:
    rows, head = register(5)
    rows[2]["actor"] = "someone-else@fvm.example"
    assert verify(rows, head) == "row 3 was changed"


def test_a_changed_row_whose_hash_was_made_again_breaks_the_next_row() -> None:
    rows, head = register(5)
    rows[2]["detail"] = "nothing happened"
    rows[2]["hash"] = row_hash(rows[2])
    assert verify(rows, head) == ("row 4 does not follow row 3: one of them was changed, or a row inserted or "
                                  "removed between them")


def test_a_removed_row_is_named_in_the_middle_and_at_the_end() -> None:
    rows, head = register(5)
    assert verify(rows[:2] + rows[3:], head) == "row 3 was removed (the register goes from row 2 to row 4)"
    assert verify(rows[:4], head) == "row 5 was removed (the register ends at row 4; its head says row 5)"


def test_a_row_added_behind_the_registers_back_is_named() -> None:
    rows, head = register(5)
    extra = {**rows[-1], "seq": 6, "target": "event-forged", "prev_hash": rows[-1]["hash"]}
    extra["hash"] = row_hash(extra)
    assert verify([*rows, extra], head) == "row 6 was inserted (the register's head says it ends at row 5)"
