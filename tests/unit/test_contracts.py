import subprocess
import sys
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from contracts.deliveries import DeliveryOutcome, DeliveryOutcomes, SendEmail
from contracts.events import SteeringDecisionMade, parse_event
from tests.conftest import ROOT, make_event

EVENT_ID = uuid4()


def test_an_events_type_selects_its_model_and_fills_the_defaults() -> None:
    event = make_event("steering.decision")
    assert isinstance(event, SteeringDecisionMade)
    assert isinstance(event.event_id, UUID)
    assert event.language == "sv"


def test_unknown_event_type_is_rejected_with_its_path() -> None:
    with pytest.raises(ValidationError) as info:
        parse_event({"type": "gossip", "program": "fvm", "publisher": "x", "importance": "must_know",
                     "payload": {}})
    assert "gossip" in str(info.value) or "tag" in str(info.value)


def test_unknown_fields_are_rejected_everywhere() -> None:
    with pytest.raises(ValidationError) as info:
        make_event("status.update", payload={"title": "t", "summary": "s", "colour": "red"})
    assert ("status.update", "payload", "colour") in [e["loc"] for e in info.value.errors()]


def test_timestamps_without_a_time_zone_are_refused() -> None:
    with pytest.raises(ValidationError):
        make_event(embargo_until="2030-01-01T10:00:00")


def test_an_accepted_contract_cannot_be_changed() -> None:
    event = make_event()
    with pytest.raises(ValidationError):
        event.program = "fvis"  # type: ignore[misc]


def test_email_command_needs_a_valid_address_for_every_recipient() -> None:
    with pytest.raises(ValidationError) as info:
        SendEmail(event_id=make_event().event_id, program="fvm", audience_id="a", sender_name="s",
                  sender_address="fvm@vgregion.se", subject="s", text_body="t", html_body="h",
                  recipients=({"id": "r1", "address": "ok@example.se", "name": "n"},  # type: ignore[arg-type]
                              {"id": "r2", "address": "not-an-address", "name": "n"}))
    assert [e["loc"] for e in info.value.errors()] == [("recipients", 1, "address")]


def test_email_command_carries_at_most_one_chunk_of_recipients() -> None:
    from contracts.deliveries import EMAIL_CHUNK

    people = [{"id": f"r{n}", "address": f"r{n}@example.se", "name": "n"} for n in range(EMAIL_CHUNK + 1)]
    with pytest.raises(ValidationError, match="at most 250"):
        SendEmail(event_id=make_event().event_id, program="fvm", audience_id="a", sender_name="s",
                  sender_address="fvm@vgregion.se", subject="s", text_body="t", html_body="h",
                  recipients=people)  # type: ignore[arg-type]


def test_no_contract_has_a_field_for_a_webhook_or_other_secret() -> None:
    from contracts.channels import CHANNELS
    from contracts.deliveries import DeadLetter, EventPlanned

    def field_names(schema: dict[str, object]) -> set[str]:
        names = set(schema.get("properties", {}))  # type: ignore[call-overload]
        for sub in schema.get("$defs", {}).values():  # type: ignore[attr-defined]
            names |= field_names(sub)
        return names

    for model in (*(spec.command for spec in CHANNELS.values()), DeliveryOutcomes, EventPlanned, DeadLetter):
        names = field_names(model.model_json_schema())
        assert not [n for n in names if "url" in n or "webhook" in n or "token" in n], model.__name__


def test_committed_schemas_and_asyncapi_match_the_code() -> None:
    result = subprocess.run([sys.executable, "-m", "services.embedded.specs", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_chunks_outcome_counts_what_its_command_carried_and_names_only_the_unsent() -> None:
    now = datetime.now(UTC)

    def unsent(status: str, audience: str = "a") -> DeliveryOutcome:
        return DeliveryOutcome(event_id=EVENT_ID, program="fvm", channel="email", audience_id=audience,
                               recipient_id="p1", status=status, reason="temporary: 451", at=now)

    def state(**counts: object) -> DeliveryOutcomes:
        values: dict[str, object] = {"sent": 0, "failed": 0, "deferred": 0, "unsent": (), **counts}
        return DeliveryOutcomes(event_id=EVENT_ID, program="fvm", channel="email", audience_id="a", chunk="c1",
                                size=3, at=now, **values)  # type: ignore[arg-type]

    ok = state(sent=2, deferred=1, unsent=(unsent("deferred"),))
    assert (ok.ended, ok.bus_key) == (2, "c1:email")
    with pytest.raises(ValidationError, match="claims 4 deliveries but its command carried 3"):
        state(sent=4)
    with pytest.raises(ValidationError, match="names exactly the failed and deferred"):
        state(sent=2, failed=1)  # the failed one unnamed
    with pytest.raises(ValidationError, match="names exactly the failed and deferred"):
        state(sent=1, unsent=(unsent("sent"),))
    with pytest.raises(ValidationError, match="of the chunk's event, target group and channel"):
        state(deferred=1, unsent=(unsent("deferred", audience="b"),))