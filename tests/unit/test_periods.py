from datetime import UTC, datetime

import pytest

from contracts.schedule import DigestAsker, DigestDue, ReleaseDue, digest_id, parse_schedule_due
from programs.labels import sv_period
from services.scheduler.periods import last_whole_period, parse_period


def test_a_monthly_digest_sent_on_the_first_covers_the_whole_previous_month_in_swedish_time() -> None:
    period = last_whole_period("monthly", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))  # 07:00 in Stockholm
    assert period.label == "2026-11" and sv_period(period.label) == "november 2026"
    assert period.start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # midnight, 1 November, CET
    assert period.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_a_weekly_digest_covers_the_last_whole_iso_week_across_new_year() -> None:
    period = last_whole_period("weekly", datetime(2027, 1, 4, 6, 0, tzinfo=UTC))  # Monday 4 January 2027
    assert period.label == "2026-W53" and sv_period(period.label) == "vecka 53 2026"
    assert period == parse_period("2026-W53")


def test_january_looks_back_to_december_of_the_year_before() -> None:
    assert last_whole_period("monthly", datetime(2027, 1, 15, tzinfo=UTC)).label == "2026-12"


@pytest.mark.parametrize("label", ["2026-13", "2026-W54", "november", "2026-1", ""])
def test_a_period_that_is_not_one_is_refused_with_the_reason(label: str) -> None:
    with pytest.raises(ValueError, match="period|no such"):
        parse_period(label)


def test_a_digests_id_is_the_same_for_the_same_group_and_period_and_differs_otherwise() -> None:
    assert digest_id("fvm", "a", "2026-11") == digest_id("fvm", "a", "2026-11")
    assert len({digest_id("fvm", "a", "2026-11"), digest_id("fvm", "b", "2026-11"),
                digest_id("fvm", "a", "2026-10"), digest_id("fvis", "a", "2026-11")}) == 4


def test_a_digest_names_its_group_and_period_and_a_release_its_event() -> None:
    with pytest.raises(ValueError, match="digest.audience_id"):
        parse_schedule_due('{"kind": "digest", "program": "fvm", "due_at": "2026-12-01T00:00:00Z"}')
    with pytest.raises(ValueError, match="release.event_id"):
        parse_schedule_due('{"kind": "release", "program": "fvm", "due_at": "2026-12-01T00:00:00Z"}')


def test_a_due_of_version_1_still_on_the_old_topic_reads_as_the_current_types() -> None:
    """A rolling upgrade: what the old scheduler said on schedule.due.v1 is still heard, as version 2."""
    digest = parse_schedule_due('{"kind": "digest", "program": "fvm", "audience_id": "a", "event_id": null, '
                                '"period": {"label": "2026-11", "start": "2026-11-01T00:00:00Z", '
                                '"end": "2026-12-01T00:00:00Z"}, "due_at": "2026-12-01T07:00:00Z", '
                                '"requested_by": "cli"}')
    assert isinstance(digest, DigestDue) and digest.asked_by is DigestAsker.OPERATOR
    assert digest.digest_id == digest_id("fvm", "a", "2026-11")
    release = parse_schedule_due('{"kind": "release", "program": "fvm", "audience_id": null, "period": null, '
                                 '"event_id": "6f1c2b8e-8f0e-4f7a-9a53-2f7b0c6d9e11", '
                                 '"due_at": "2026-12-01T07:00:00Z", "requested_by": "schedule"}')
    assert isinstance(release, ReleaseDue) and str(release.event_id).startswith("6f1c2b8e")
    with pytest.raises(ValueError, match="release.event_id"):  # neither version: the current one's reason
        parse_schedule_due('{"kind": "release", "program": "fvm", "event_id": null, "due_at": "2026-12-01T07:00:00Z"}')


def test_digest_run_asks_for_every_group_with_a_cadence_by_default_each_its_last_whole_period() -> None:
    from programs import load_programs
    from services.scheduler.manual import digests_to_run
    from tests.conftest import ROOT

    programs = load_programs(ROOT / "deploy" / "programs")
    now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    dues = digests_to_run(programs, "fvm", None, None, now)
    cadence = {a.id: a.digest for a in programs["fvm"].audiences}
    assert {d.audience_id for d in dues} == {a for a, c in cadence.items() if c != "none"}
    assert {d.period.label for d in dues if cadence[d.audience_id] == "monthly"} == {"2026-11"}
    assert all(d.asked_by is DigestAsker.OPERATOR and d.asked_by.every_member for d in dues)
    [one] = digests_to_run(programs, "fvm", "politisk-styrgrupp", "2026-W40", now)
    assert one.period.label == "2026-W40"
    for program, audience, period, reason in (("nope", None, None, "unknown programme 'nope'"),
                                              ("fvm", "nope", None, "no target group 'nope'"),
                                              ("fvm", None, "2026-13", "no such month")):
        with pytest.raises(ValueError, match=reason):
            digests_to_run(programs, program, audience, period, now)
