import pytest

from services.gateway.auth import TokenAuthority, TokenConfigError, parse_tokens
from services.gateway.status import event_status


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


def test_status_without_a_plan_is_accepted() -> None:
    assert event_status(None, {})["status"] == "accepted"


def test_status_counts_targeted_sent_failed_per_group_and_channel() -> None:
    plan = ("planned", {"targeted": {"styrgrupp": {"email": 3, "teams": 1}, "intranet": {"intranet": 1}}})
    counts = {("styrgrupp", "email", "sent"): 2, ("styrgrupp", "email", "failed"): 1,
              ("styrgrupp", "teams", "sent"): 1}
    status = event_status(plan, counts)
    assert status["status"] == "delivering"
    assert status["groups"]["styrgrupp"]["email"] == {"targeted": 3, "sent": 2, "failed": 1}
    counts[("intranet", "intranet", "sent")] = 1
    done = event_status(plan, counts)
    assert done["status"] == "delivered"
    assert done["totals"]["email"] == {"targeted": 3, "sent": 2, "failed": 1}


def test_embargoed_plan_reports_embargoed() -> None:
    assert event_status(("embargoed", {"targeted": {"a": {"email": 1}}}), {})["status"] == "embargoed"
