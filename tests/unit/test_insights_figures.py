"""The follow-up figures (pure): shares per measure, and answers shown only where five or more answered."""

from collections import Counter
from datetime import UTC, datetime

from services.insights.figures import MIN_ANSWERS, Row, by_event, by_group, by_month


def row(**counts: int) -> Row:
    return Row("g", "Gruppen", Counter({k.replace("__", ":"): v for k, v in counts.items()}))


def test_reached_is_delivered_of_targeted_over_every_channel() -> None:
    r = row(targeted__email=8, sent__email=6, failed__email=2, targeted__teams=1, sent__teams=1)
    assert r.share("reached") == 77.8  # 7 of 9
    reach = r.channels(("email", "teams", "intranet"))
    assert set(reach) == {"email", "teams"} and (reach["email"].sent, reach["email"].failed) == (6, 2)


def test_read_is_a_share_of_the_people_reached_by_email_and_never_over_a_hundred() -> None:
    assert row(sent__email=10, read=4).share("read") == 40.0
    assert row(sent__email=2, read=5).share("read") == 100.0  # readers from a Teams card counted too
    assert row(sent__teams=1, read=3).share("read") is None  # no one reached in person: nothing to divide by


def test_answers_of_fewer_than_five_people_are_not_shown_at_all() -> None:
    few = row(understood__ja=3, understood__nej=1, involved__delvis=4)
    assert MIN_ANSWERS == 5
    assert few.answers("understood") is None and few.share("understood") is None
    enough = row(understood__ja=4, understood__nej=1, involved__ja=1, involved__delvis=2, involved__nej=2)
    assert enough.answers("understood") == {"ja": 4, "nej": 1} and enough.share("understood") == 80.0
    assert enough.answers("involved") == {"ja": 1, "delvis": 2, "nej": 2} and enough.share("involved") == 20.0


def test_rows_per_group_per_event_and_per_month() -> None:
    counts = {("e1", "b"): Counter({"sent:email": 2}), ("e1", "a"): Counter({"sent:email": 1}),
              ("e1", "intranet"): Counter({"sent:intranet": 1}), ("e2", "a"): Counter({"sent:email": 5})}
    groups = by_group(counts, "e1", {"a": "Grupp A", "b": "Grupp B"})
    assert [(r.key, r.label) for r in groups] == [("a", "Grupp A"), ("b", "Grupp B"), ("intranet", "Intranätet (alla)")]
    assert [r.sent for r in by_event(counts, [("e1", "Ett"), ("e2", "Två")])] == [4, 5]
    published = {"e1": datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "e2": datetime(2026, 9, 2, tzinfo=UTC)}
    months = by_month(counts, published, "a")
    assert [(r.key, r.sent) for r in months] == [("2026-09", 5), ("2026-11", 1)]  # Swedish time: 1 November


def test_a_title_with_dollar_signs_is_drawn_as_text_not_read_as_mathematics() -> None:
    from services.insights.charts import bar_chart

    titles = ["Pris $\\foo$ för licenser", "$x^2$ och $", "Kostnad: 5 $ per licens"]
    svg = bar_chart([Row(f"e{i}", t, Counter({"sent:email": 4, "targeted:email": 4})) for i, t in enumerate(titles)],
                    "Diagram")
    for title in titles:
        assert title.replace("&", "&amp;") in svg
