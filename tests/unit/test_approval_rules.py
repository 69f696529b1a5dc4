"""What needs approval, from the programme's rules and the event's plan (pure)."""

from typing import Any

import pytest

from contracts.deliveries import DeliveryPlan, PlannedGroup
from contracts.events import Event
from programs import Program
from programs.model import Approval, ApprovalTriggers
from services.gateway.approval import approval_reasons, needs_plan
from tests.conftest import make_event


def ruled(fvm: Program, **triggers: Any) -> Program:
    return fvm.model_copy(update={"approval": Approval(required_for=ApprovalTriggers(**triggers))})


def plan_of(event: Event, **recipients: int) -> DeliveryPlan:
    groups = tuple(PlannedGroup(audience_id=a, name=a, tier="primary", channels=("email",), recipients=n, reasons=())
                   for a, n in recipients.items())
    return DeliveryPlan(event_id=event.event_id, program="fvm", groups=groups, refused=())


def test_a_programme_without_rules_needs_no_approval_and_no_plan(fvm: Program) -> None:
    open_fvm = fvm.model_copy(update={"approval": None})
    event = make_event(importance="must_know")
    assert not needs_plan(event, open_fvm) and approval_reasons(event, open_fvm, None) == []


def test_importance_alone_decides_without_a_plan(fvm: Program) -> None:
    rules = ruled(fvm, importance=["must_know"], external=True, recipients_over=10)
    event = make_event(importance="must_know")
    assert not needs_plan(event, rules)
    assert [r.rule for r in approval_reasons(event, rules, None)] == ["importance"]


@pytest.mark.parametrize("recipients, rules, expected", [
    ({"media": 3}, {"external": True}, [("external", "media")]),
    ({"politisk-styrgrupp": 3}, {"external": True}, []),
    ({"politisk-styrgrupp": 600, "programstyrgrupp": 401}, {"recipients_over": 1000}, [("recipients", "1001 > 1000")]),
    ({"politisk-styrgrupp": 600, "programstyrgrupp": 400}, {"recipients_over": 1000}, []),
    ({"media": 2000}, {"external": True, "recipients_over": 1000},
     [("external", "media"), ("recipients", "2000 > 1000")]),
])
def test_external_groups_and_recipients_are_read_from_the_plan(
        fvm: Program, recipients: dict[str, int], rules: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    program = ruled(fvm, **rules)
    event = make_event(importance="awareness")
    assert needs_plan(event, program)
    reasons = approval_reasons(event, program, plan_of(event, **recipients))
    assert [(r.rule, r.detail) for r in reasons] == expected


def test_an_event_that_cannot_be_planned_is_held_to_be_safe(fvm: Program) -> None:
    program = ruled(fvm, recipients_over=1000)
    event = make_event(importance="awareness")
    [reason] = approval_reasons(event, program, None, "the tailor did not answer")
    assert (reason.rule, reason.detail) == ("unplanned", "the tailor did not answer")
