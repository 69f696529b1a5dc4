import json
from uuid import uuid4

import pytest

from contracts.deliveries import DeliveryPlan
from programs import Program
from services.common.problems import Problem
from services.gateway.admission import admit
from services.gateway.auth import Principal, TokenAuthority, TokenConfigError, parse_tokens
from services.gateway.status import ChannelCounts, event_status


def test_tokens_are_scoped_per_programme() -> None:
    authority = TokenAuthority(parse_tokens("s3cret-token=fvm,other-token=fvm|fvis"))
    assert authority.authenticate("Bearer s3cret-token").programs == frozenset({"fvm"})  # type: ignore[union-attr]
    assert authority.authenticate("Bearer other-token").programs == frozenset({"fvm", "fvis"})  # type: ignore[union-attr]
    assert authority.authenticate("Bearer wrong-token") is None
    assert authority.authenticate("Basic s3cret-token") is None
    assert authority.authenticate(None) is None


@pytest.mark.parametrize("spec", ["nonsense", "short=fvm", "s3cret-token=", "s3cret-token=FVM!", "aaaaaaaa=fvm,aaaaaaaa=fvis"])
def test_bad_token_configuration_is_refused(spec: str) -> None:
    with pytest.raises(TokenConfigError):
        parse_tokens(spec)


def plan(targeted: dict[str, dict[str, int]]) -> DeliveryPlan:
    return DeliveryPlan(event_id=uuid4(), program="fvm", groups=(), refused=(), targeted=targeted)


def test_status_without_a_plan_is_accepted() -> None:
    assert event_status(None, {}).status == "accepted"


def test_status_counts_targeted_sent_failed_per_group_and_channel() -> None:
    planned = ("planned", plan({"styrgrupp": {"email": 3, "teams": 1}, "intranet": {"intranet": 1}}))
    counts = {("styrgrupp", "email", "sent"): 2, ("styrgrupp", "email", "failed"): 1,
              ("styrgrupp", "teams", "sent"): 1}
    status = event_status(planned, counts)
    assert status.status == "delivering"
    assert status.groups["styrgrupp"]["email"] == ChannelCounts(targeted=3, sent=2, failed=1)
    counts[("intranet", "intranet", "sent")] = 1
    done = event_status(planned, counts)
    assert done.status == "delivered"
    assert done.totals["email"] == ChannelCounts(targeted=3, sent=2, failed=1)


def test_embargoed_plan_reports_embargoed() -> None:
    assert event_status(("embargoed", plan({"a": {"email": 1}})), {}).status == "embargoed"


FVM_ONLY = Principal(token_id="t0", programs=frozenset({"fvm"}))


def test_admission_names_every_invalid_field_and_never_trusts_a_publishers_published_at(fvm: Program) -> None:
    body = {"type": "steering.decision", "program": "fvm", "publisher": "p", "importance": "urgent",
            "published_at": "2020-01-01T00:00:00+00:00", "payload": {"committee": "K", "decision_text": "x"}}
    with pytest.raises(Problem) as info:
        admit(json.dumps(body).encode(), FVM_ONLY, {"fvm": fvm})
    assert info.value.status == 422
    assert {e["path"] for e in info.value.errors or []} == {"steering.decision.importance",
                                                           "steering.decision.payload.title"}
    body.update(importance="must_know", payload={"committee": "K", "title": "T", "decision_text": "x"})
    admitted = admit(json.dumps(body).encode(), FVM_ONLY, {"fvm": fvm})
    assert admitted.event.published_at is None and len(admitted.request_hash) == 64


@pytest.mark.parametrize("body,status,detail", [
    (b"{not json", 422, "body is not valid JSON"),
    (b"[1, 2]", 422, "body must be a JSON object"),
    (b'{"type": "status.update", "program": "fvis", "publisher": "p", "importance": "awareness",'
     b' "payload": {"title": "T", "summary": "S"}}', 403, "token may not publish for programme 'fvis'"),
])
def test_admission_refuses_what_is_not_an_event_for_this_token(fvm: Program, body: bytes, status: int,
                                                               detail: str) -> None:
    with pytest.raises(Problem) as info:
        admit(body, FVM_ONLY, {"fvm": fvm})
    assert (info.value.status, info.value.detail) == (status, detail)
