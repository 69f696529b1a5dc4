"""Quiet hours (rule 10): the range in local time across daylight-saving changes, the rule, and the plan."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from programs import Program, ProgramConfigError, load_program
from programs.quiet import QuietHours
from services.tailor import policy
from services.tailor.directory import Recipient
from services.tailor.planning import plan_deliveries
from tests.conftest import make_event
from tests.unit.test_programs import _write

NIGHT = QuietHours.model_validate("21:00-07:00")


def quiet(program: Program, *audience_ids: str, hours: str = "21:00-07:00") -> Program:
    """The programme with quiet hours on the named groups."""
    audiences = tuple(a.model_copy(update={"quiet_hours": QuietHours.model_validate(hours)})
                      if a.id in audience_ids else a for a in program.audiences)
    return program.model_copy(update={"audiences": audiences})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("instant", "ends"), [
    (utc(2026, 7, 1, 20, 30), utc(2026, 7, 2, 5, 0)),  # 22:30 CEST: ends 07:00 CEST the next morning
    (utc(2026, 7, 2, 2, 0), utc(2026, 7, 2, 5, 0)),  # 04:00 CEST, after midnight: ends the same morning
    (utc(2026, 12, 1, 21, 30), utc(2026, 12, 2, 6, 0)),  # 22:30 CET: 07:00 CET is 06:00 UTC
    (utc(2026, 10, 24, 20, 30), utc(2026, 10, 25, 6, 0)),  # 22:30 CEST, the clocks go back in the night: 07:00 CET
    (utc(2026, 3, 28, 21, 30), utc(2026, 3, 29, 5, 0)),  # 22:30 CET, the clocks go forward: 07:00 CEST
])
def test_quiet_hours_end_at_the_local_hour_across_daylight_saving_changes(instant: datetime, ends: datetime) -> None:
    assert NIGHT.ends_after(instant) == ends
    assert NIGHT.contains(instant)


@pytest.mark.parametrize("instant", [utc(2026, 7, 1, 18, 59), utc(2026, 7, 2, 5, 0), utc(2026, 12, 1, 6, 0),
                                     utc(2026, 12, 1, 12, 0)])
def test_outside_the_quiet_hours_nothing_waits(instant: datetime) -> None:
    assert NIGHT.ends_after(instant) is None and not NIGHT.contains(instant)


def test_a_range_within_one_day_and_another_time_zone() -> None:
    lunch = QuietHours.model_validate("11:30-13:00 Europe/London")
    assert str(lunch) == "11:30–13:00" and lunch.time_zone == "Europe/London"
    assert lunch.ends_after(utc(2026, 12, 1, 12, 0)) == utc(2026, 12, 1, 13, 0)
    assert lunch.ends_after(utc(2026, 12, 1, 13, 0)) is None
    assert lunch.ends_after(utc(2026, 12, 1, 11, 29)) is None


@pytest.mark.parametrize(("text", "says"), [
    ("21-07", "not a range"), ("25:00-07:00", "25:00 is not a time of day"), ("21:00-07:61", "not a time of day"),
    ("21:00-21:00", "same time"), ("21:00-07:00 Mars/Olympus", "not a time zone"), ("", "not a range"),
])
def test_quiet_hours_that_are_no_range_or_zone_are_refused_with_why(text: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        QuietHours.model_validate(text)


@pytest.mark.parametrize(("value", "says"), [("22:00-06:00 Nowhere/City", "not a time zone"),
                                             ("nattetid", "not a range")])
def test_bad_quiet_hours_in_a_programme_file_name_the_file_line_and_path(
        tmp_path: Path, value: str, says: str) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][3].update({"quiet_hours": value}))
    with pytest.raises(ProgramConfigError) as info:
        load_program(path)
    message = str(info.value)
    assert str(path) in message and "audiences[3] (programstyrgrupp).quiet_hours" in message and says in message
    line = int(message.split("line ")[1].split(":")[0])
    assert path.read_text().splitlines()[line - 1].lstrip("- ").startswith("quiet_hours:")


def test_good_quiet_hours_load_from_a_programme_file(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][3].update({"quiet_hours": "21:00-07:00"}))
    group = load_program(path).audience("programstyrgrupp")
    assert group is not None and group.quiet_hours == NIGHT and group.quiet_hours.time_zone == "Europe/Stockholm"


# Rule 10 --------------------------------------------------------------------------------------------------------

LATE = utc(2026, 12, 1, 21, 30)  # 22:30 in Stockholm
MORNING = utc(2026, 12, 2, 6, 0)  # 07:00 in Stockholm


def test_only_a_must_know_alert_goes_in_quiet_hours(fvm: Program) -> None:
    group = quiet(fvm, "programstyrgrupp").audience("programstyrgrupp")
    assert group is not None
    assert policy.quiet_until(make_event(importance="must_know"), group, LATE) is None
    assert policy.quiet_until(make_event(importance="awareness"), group, LATE) == MORNING
    assert policy.quiet_until(make_event("newsletter.issue"), group, LATE) == MORNING  # bulk: not an alert
    assert policy.quiet_until(make_event(importance="awareness"), group, MORNING) is None


def test_a_newsletter_at_half_past_ten_waits_for_the_groups_quiet_hours_and_the_plan_says_so(
        fvm: Program, small_directory: list[Recipient]) -> None:
    program = quiet(fvm, "politisk-styrgrupp")
    event = make_event("newsletter.issue", audiences=["politisk-styrgrupp", "programstyrgrupp"])
    plan = plan_deliveries(event, program, small_directory, now=LATE)
    assert plan.waiting == {"email": {"politisk-styrgrupp": MORNING}}  # its Teams and the intranet are not waiting
    reasons = {g.audience_id: g.reasons for g in plan.contract.groups}
    assert "quiet hours 21:00–07:00: email waits until 2026-12-02 07:00 (rule 10)" in reasons["politisk-styrgrupp"]
    assert not any("rule 10" in r for r in reasons["programstyrgrupp"])
    assert plan.contract.targeted["politisk-styrgrupp"] == {"email": 9}  # planned: it waits, it is not dropped
    assert plan_deliveries(event, program, small_directory, now=MORNING).waiting == {}


def test_a_must_know_alert_in_quiet_hours_goes_at_once_and_the_plan_says_which_rule_applied(
        fvm: Program, small_directory: list[Recipient]) -> None:
    program = quiet(fvm, "politisk-styrgrupp")
    plan = plan_deliveries(make_event(audiences=["politisk-styrgrupp"]), program, small_directory, now=LATE)
    assert plan.waiting == {}
    [group] = plan.contract.groups
    assert "must-know alert: sent at once despite the quiet hours 21:00–07:00 (rule 10)" in group.reasons
