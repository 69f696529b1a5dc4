from datetime import date

from programs.model import Baseline, TimelineEntry
from programs.timeline import AreaUpdate, current_timeline

BASELINE = Baseline(phase="Införande", timeline=(
    TimelineEntry(id="sodra-2", title="Resten av södra", area="södra", when="hösten 2025", planned_date=date(2025, 10, 1)),
    TimelineEntry(id="sodra-1", title="Södra", area="södra", when="hösten 2024", planned_date=date(2024, 10, 1)),
    TimelineEntry(id="B4", title="Beslut B4", when="2020-Q4", planned_date=date(2020, 10, 1)),
))


def test_with_no_news_the_timeline_is_the_plan_in_date_order() -> None:
    steps = current_timeline(BASELINE, [])
    assert [(s.title, s.when, s.state_label) for s in steps] == [
        ("Beslut B4", "2020-Q4", "Planerad"), ("Södra", "hösten 2024", "Planerad"),
        ("Resten av södra", "hösten 2025", "Planerad")]


def test_go_live_news_updates_the_areas_next_open_wave_and_then_the_one_after() -> None:
    started = AreaUpdate("södra", date(2024, 11, 12), "completed", "Södra är igång", source="e1")
    moved = AreaUpdate("södra", date(2025, 11, 4), "rescheduled", "Ny tid för resten av södra", source="e2")
    steps = {s.title: s for s in current_timeline(BASELINE, [started, moved])}
    assert (steps["Södra"].state, steps["Södra"].when, steps["Södra"].source) == ("completed", "12 november 2024", "e1")
    assert (steps["Resten av södra"].state_label, steps["Resten av södra"].planned_date) == ("Ny tidpunkt",
                                                                                          date(2025, 11, 4))


def test_news_naming_its_wave_updates_that_wave_and_news_of_an_unplanned_area_is_its_own_step() -> None:
    steps = current_timeline(BASELINE, [AreaUpdate("södra", date(2025, 9, 1), "started", "x", wave="sodra-2"),
                                        AreaUpdate("norra", date(2026, 4, 1), "planned", "Norra", source="e3")])
    by_title = {s.title: s for s in steps}
    assert by_title["Södra"].state == "planned" and by_title["Resten av södra"].state == "started"
    assert by_title["Norra"].area == "norra" and by_title["Norra"].source == "e3"


def test_a_programme_without_a_baseline_shows_only_its_news() -> None:
    assert [s.title for s in current_timeline(None, [AreaUpdate("x", date(2026, 1, 1), "planned", "X")])] == ["X"]
