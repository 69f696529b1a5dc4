"""Deferral, not failure: the retry schedule, Microsoft's webhook limits and the size of a Teams card."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.common.retry import RetryPolicy, parse_duration
from services.common.settings import CommonSettings
from services.teams.cards import MAX_POST_BYTES, fit_card, post_bytes
from services.teams.limits import WEBHOOK_LIMITS, turn_in

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_a_refused_delivery_is_tried_again_on_a_schedule_that_reaches_hours_until_the_horizon() -> None:
    policy = RetryPolicy.from_settings("1m,5m,30m,2h", "24h")
    waits, now, attempts = [], T0, 0
    while True:
        attempts += 1
        at = policy.next_attempt(T0, attempts, now)
        if at is None:
            break
        waits.append(at - now)
        now = at
    assert waits[:5] == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                         timedelta(hours=2)]
    assert now - T0 <= timedelta(hours=24) < now - T0 + timedelta(hours=2)
    assert policy.next_attempt(T0, 1, T0, at_least=600) == T0 + timedelta(minutes=10)  # Retry-After wins


@pytest.mark.parametrize("schedule,horizon", [("1m,soon", "24h"), ("", "24h"), ("1m", "0h"), ("1m", "forever")])
def test_a_retry_setting_that_is_not_a_duration_is_refused_by_name(schedule: str, horizon: str) -> None:
    with pytest.raises(ValueError, match="duration|BUDKAVLE_RETRY_SCHEDULE"):
        CommonSettings(retry_schedule=schedule, retry_horizon=horizon)


def test_durations_read_like_a_person_writes_them() -> None:
    assert [parse_duration(t) for t in ("90s", "5m", "2h", "1d")] == [
        timedelta(seconds=90), timedelta(minutes=5), timedelta(hours=2), timedelta(days=1)]


def test_a_burst_to_one_webhook_queues_within_microsofts_limits_and_defers_past_the_hourly_one() -> None:
    now = 1000.0
    posted: list[float] = []
    deferred: list[float] = []
    for _ in range(200):  # as the limiter takes turns: wait when the wait is short, else defer
        wait = turn_in(posted, WEBHOOK_LIMITS, now)
        if wait > 30.0:
            deferred.append(wait)
            continue
        now += wait
        posted.append(now)
    assert len(posted) == 100 and len(deferred) == 100
    for span, limit in ((1.0, 4), (30.0, 60), (3600.0, 100)):
        assert max(sum(1 for t in posted if start <= t < start + span) for start in posted) <= limit
    assert min(deferred) > 3000  # the hourly limit: deferred, not waited for in the consumer


def test_a_card_over_28_kb_is_cut_at_a_word_pointing_to_read_more_and_never_above_version_1_5() -> None:
    long_text = "Ord " * 20_000
    card = {"type": "AdaptiveCard", "version": "1.6", "body": [
        {"type": "TextBlock", "text": "Rubrik"}, {"type": "TextBlock", "text": long_text}],
        "actions": [{"type": "Action.OpenUrl", "title": "Läs mer", "url": "https://x/intranet/items/1"}]}
    fitted = fit_card(card)
    assert post_bytes(fitted) <= MAX_POST_BYTES and fitted["version"] == "1.5"
    assert fitted["body"][1]["text"].endswith("… (Läs mer via länken nedan)")
    assert fitted["body"][0]["text"] == "Rubrik" and fitted["actions"] == card["actions"]
    assert card["body"][1]["text"] == long_text  # the command's card is left as it was
    small = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "Hej"}]}
    assert fit_card(small) == small and json.dumps(fit_card(small))
