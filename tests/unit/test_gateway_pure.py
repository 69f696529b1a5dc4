import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from contracts.deliveries import DeliveryPlan
from contracts.lifecycle import EventState, PlanStatus
from programs import Program
from services.common.auth import Principal, TokenAuthority, TokenConfigError, TokenRole, parse_tokens
from services.common.problems import Problem
from services.gateway.admission import admit
from services.gateway.status import ChannelCounts, event_status


def test_tokens_are_scoped_per_programme() -> None:
    authority = TokenAuthority(parse_tokens("s3cret-token=fvm,other-token=fvm|fvis"))
    assert authority.authenticate("Bearer s3cret-token").programs == frozenset({"fvm"})  # type: ignore[union-attr]
    assert authority.authenticate("Bearer other-token").programs == frozenset({"fvm", "fvis"})  # type: ignore[union-attr]
    assert authority.authenticate("Bearer wrong-token") is None
    assert authority.authenticate("Basic s3cret-token") is None
    assert authority.authenticate(None) is None


def test_a_token_carries_a_role_publisher_unless_it_says_otherwise() -> None:
    authority = TokenAuthority(parse_tokens("pub-token-1=fvm,read-token-1=fvm:reader,both-token-1=fvm|fvis:publisher+reader,"
                                            "admin-token-1=fvm:admin"))
    found = {name: authority.authenticate(f"Bearer {name}-token-1") for name in ("pub", "read", "both", "admin")}
    may = {name: {r.value for r in TokenRole if p is not None and p.may(r)} for name, p in found.items()}
    assert may == {"pub": {"publisher"}, "read": {"reader"}, "both": {"publisher", "reader"},
                   "admin": {"publisher", "reader", "admin"}}


@pytest.mark.parametrize("spec", ["nonsense", "short=fvm", "s3cret-token=", "s3cret-token=FVM!", "aaaaaaaa=fvm,aaaaaaaa=fvis",
                                  "s3cret-token=fvm:approver", "s3cret-token=fvm:", "s3cret-token=fvm:reader+",
                                  "s3cret-token=:reader"])
def test_bad_token_configuration_is_refused(spec: str) -> None:
    with pytest.raises(TokenConfigError):
        parse_tokens(spec)


def plan(targeted: dict[str, dict[str, int]]) -> DeliveryPlan:
    return DeliveryPlan(event_id=uuid4(), program="fvm", groups=(), refused=(), targeted=targeted)


def test_status_without_a_plan_is_accepted() -> None:
    assert event_status(None, {}).status == "accepted"


def test_status_counts_targeted_sent_failed_per_group_and_channel() -> None:
    planned = (PlanStatus.PLANNED, plan({"styrgrupp": {"email": 3, "teams": 1}, "intranet": {"intranet": 1}}))
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
    assert event_status((PlanStatus.EMBARGOED, plan({"a": {"email": 1}})), {}).status is EventState.EMBARGOED


FVM_ONLY = Principal(token_id="sha256:test", programs=frozenset({"fvm"}))
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def refusal(fvm: Program, **changes: Any) -> Problem:
    """The problem that refuses a valid go-live once `changes` are applied (payload keys nest under payload)."""
    body: dict[str, Any] = {"type": "golive.milestone", "program": "fvm", "publisher": "p", "importance": "must_know",
                            "payload": {"area": "södra", "planned_date": "2027-04-01", "status": "planned",
                                        "title": "Södra inför Millennium", "what_changes": "Ny journal."}}
    for key, value in changes.items():
        (body["payload"] if key in body["payload"] else body)[key] = value
    with pytest.raises(Problem) as info:
        admit(json.dumps(body).encode(), FVM_ONLY, {"fvm": fvm}, NOW)
    return info.value


def test_admission_names_every_invalid_field_and_never_trusts_a_publishers_published_at(fvm: Program) -> None:
    body = {"type": "steering.decision", "program": "fvm", "publisher": "p", "importance": "urgent",
            "published_at": "2020-01-01T00:00:00+00:00", "payload": {"committee": "K", "decision_text": "x"}}
    with pytest.raises(Problem) as info:
        admit(json.dumps(body).encode(), FVM_ONLY, {"fvm": fvm}, NOW)
    assert info.value.status == 422
    assert {e["path"] for e in info.value.errors or []} == {"steering.decision.importance",
                                                           "steering.decision.payload.title"}
    body.update(importance="must_know", payload={"committee": "K", "title": "T", "decision_text": "x"})
    admitted = admit(json.dumps(body).encode(), FVM_ONLY, {"fvm": fvm}, NOW)
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
        admit(body, FVM_ONLY, {"fvm": fvm}, NOW)
    assert (info.value.status, info.value.detail) == (status, detail)


def test_an_instant_is_plausible_by_the_year_it_is_written_in_as_the_document_says(fvm: Program) -> None:
    """The schema's pattern (^20[0-9]{2}-) and the check agree: 1999 in UTC, but written in 2000, is accepted."""
    body = {"type": "status.update", "program": "fvm", "publisher": "p", "importance": "awareness",
            "occurred_at": "2000-01-01T00:30:00+01:00", "payload": {"title": "T", "summary": "S"}}
    event = admit(json.dumps(body).encode(), FVM_ONLY, {"fvm": fvm}, NOW).event
    assert event.occurred_at.year == 2000


@pytest.mark.parametrize("changes,path,reason", [
    ({"area": "sodra"}, "payload.area", "programme 'fvm' has no area 'sodra' (it has södra, norra, östra, västra)"),
    ({"regions": ["västra", "Umeå"]}, "regions.1", "programme 'fvm' has no area 'Umeå'"),
    ({"embargo_until": "2027-12-01T08:00:00+01:00"}, "embargo_until", "an embargo may reach at most a year ahead"),
    ({"title": "Södra\vinför"}, "golive.milestone.payload.title", "control character U+000B"),
    ({"what_changes": "Ny\ufffejournal"}, "golive.milestone.payload.what_changes", "control character U+FFFE"),
    ({"occurred_at": "9999-12-31T23:59:59-23:59"}, "golive.milestone.occurred_at", "outside the calendar"),
    ({"occurred_at": "1970-01-01T00:00:00+00:00"}, "golive.milestone.occurred_at", "between the years 2000 and 2100"),
])
def test_admission_checks_what_the_programme_and_the_channels_can_carry(
        fvm: Program, changes: dict[str, Any], path: str, reason: str) -> None:
    problem = refusal(fvm, **changes)
    assert problem.status == 422
    [error] = problem.errors or []
    assert error["path"] == path and reason in error["reason"]


def test_deeply_nested_json_is_refused_as_invalid_not_a_server_error(fvm: Program) -> None:
    with pytest.raises(Problem) as info:
        admit(b"[" * 100_000 + b"]" * 100_000, FVM_ONLY, {"fvm": fvm}, NOW)
    assert info.value.status == 422 and info.value.errors == [{"path": "<root>", "reason": "nested too deeply"}]


def test_an_idempotency_scope_follows_the_token_not_its_place_in_the_list() -> None:
    first = TokenAuthority(parse_tokens("aaaa-token-1=fvm,bbbb-token-2=fvm"))
    reordered = TokenAuthority(parse_tokens("bbbb-token-2=fvm,aaaa-token-1=fvm"))
    a, b = first.authenticate("Bearer bbbb-token-2"), reordered.authenticate("Bearer bbbb-token-2")
    assert a is not None and b is not None and a.token_id == b.token_id
    assert "bbbb" not in a.token_id  # a handle, never the secret
    other = first.authenticate("Bearer aaaa-token-1")
    assert other is not None and other.token_id != a.token_id


def newsletter(*bodies: str) -> bytes:
    return json.dumps({"type": "newsletter.issue", "program": "fvm", "publisher": "p", "importance": "awareness",
                       "payload": {"title": "Nyhetsbrev", "sections": [{"heading": f"Del {i}", "body": b}
                                                                       for i, b in enumerate(bodies)]}}).encode()


def test_a_newsletter_too_large_for_the_bus_once_rendered_is_refused_at_the_door_with_the_reason(fvm: Program) -> None:
    """A probe's twelve sections of 20 000 `&` were accepted and then stayed `delivering` forever."""
    with pytest.raises(Problem) as info:
        admit(newsletter(*["&" * 20_000] * 12), FVM_ONLY, {"fvm": fvm}, NOW)
    [error] = info.value.errors or []
    assert info.value.status == 422 and error["path"] == "payload" and "too large once rendered" in error["reason"]
    assert admit(newsletter(*["Text som är lång nog. " * 900] * 12), FVM_ONLY, {"fvm": fvm}, NOW)  # 237 KB of words


def test_what_the_door_admits_fits_on_the_bus_as_one_email_command_with_a_full_chunk(fvm: Program) -> None:
    """The bound is an upper bound: the largest newsletter of `&` the door lets in, rendered by the tailor for a
    full chunk of recipients, is one bus message."""
    from contracts.deliveries import EMAIL_CHUNK, MAX_BUS_MESSAGE_BYTES
    from contracts.events import parse_event
    from services.gateway.admission import rendered_size
    from services.tailor.channels import Composition, EmailComposer
    from services.tailor.directory import Recipient
    from services.tailor.rendering import Renderer
    from tests.conftest import TEMPLATES_DIR

    bodies = ["&" * 20_000] * 3 + ["&\"<" * 6_000]
    while True:  # the largest admitted: one more character would be refused
        try:
            admit(newsletter(*bodies, "&" * 1_000), FVM_ONLY, {"fvm": fvm}, NOW)
        except Problem:
            break
        bodies.append("&" * 1_000)
    event = parse_event(newsletter(*bodies))
    assert rendered_size(event) > 0
    people = [Recipient(id=f"person-{i:06d}", name="Förnamn Efternamnsson-Långnamn", email=f"f.e{i}@vgregion.example.se")
              for i in range(EMAIL_CHUNK)]
    audience = fvm.audience("programstyrgrupp")
    assert audience is not None
    composition = Composition(event=event, program=fvm, audience_id=audience.id, audience=audience, recipients=people,
                              planned_audiences=(audience.id,), published_at=NOW)
    [command] = EmailComposer().compose(composition, Renderer(TEMPLATES_DIR, "https://budkavle.example.se"))
    size = len(command.model_dump_json().encode())
    assert MAX_BUS_MESSAGE_BYTES * 0.4 < size <= MAX_BUS_MESSAGE_BYTES, size  # a large message, and within the limit


def test_an_acknowledgement_deadline_must_come_after_the_news_goes_out_and_within_90_days(fvm: Program) -> None:
    from datetime import timedelta

    from services.gateway.admission import against_programme
    from tests.conftest import make_event

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    def reasons(**envelope: Any) -> list[str]:
        return [e["reason"] for e in against_programme(make_event(**envelope), fvm, now) if e["path"] == "acknowledge_by"]

    assert reasons(acknowledge_by=(now + timedelta(days=2)).isoformat()) == []
    assert reasons(acknowledge_by=(now - timedelta(hours=1)).isoformat()) == [
        "the deadline to acknowledge must come after the message goes out"]
    assert reasons(embargo_until=(now + timedelta(days=3)).isoformat(),
                   acknowledge_by=(now + timedelta(days=4)).isoformat()) == []
    assert reasons(acknowledge_by=(now + timedelta(days=91)).isoformat()) == [
        "the deadline to acknowledge may be at most 90 days after the message goes out"]
