import subprocess
import sys
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts.deliveries import SendEmail
from contracts.events import SteeringDecisionMade, parse_event
from tests.conftest import ROOT, make_event


def test_event_type_selects_the_model() -> None:
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


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValidationError):
        make_event(embargo_until="2030-01-01T10:00:00")


def test_contracts_are_frozen() -> None:
    event = make_event()
    with pytest.raises(ValidationError):
        event.program = "fvis"  # type: ignore[misc]


def test_email_command_needs_a_valid_address() -> None:
    with pytest.raises(ValidationError) as info:
        SendEmail(event_id=make_event().event_id, program="fvm", audience_id="a", recipient_id="r",
                  to_address="not-an-address", to_name="n", sender_name="s", sender_address="fvm@vgregion.se",
                  subject="s", text_body="t", html_body="h")
    assert [e["loc"] for e in info.value.errors()] == [("to_address",)]


def test_committed_schemas_and_asyncapi_match_the_code() -> None:
    result = subprocess.run([sys.executable, "-m", "contracts.generate", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
