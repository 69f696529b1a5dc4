"""One test group per policy rule of the design; names say the rule."""

from datetime import UTC, datetime, timedelta

from contracts.channels import CHANNELS
from programs import Program
from services.tailor import policy
from services.tailor.directory import Recipient
from tests.conftest import make_event


# Rule 1 ---------------------------------------------------------------------------------------
def test_rule1_must_know_uses_the_groups_direct_channels_and_the_intranet(fvm: Program) -> None:
    group = fvm.audience("programstyrgrupp")
    assert group is not None
    assert policy.channels_for(make_event(importance="must_know"), group, CHANNELS) == ("email", "teams", "intranet")


def test_rule1_awareness_goes_to_the_intranet_only(fvm: Program) -> None:
    group = fvm.audience("programstyrgrupp")
    assert group is not None
    assert policy.channels_for(make_event(importance="awareness"), group, CHANNELS) == ("intranet",)


# Rule 2 ---------------------------------------------------------------------------------------
def test_rule2_confidential_never_reaches_uncleared_or_external_groups(fvm: Program) -> None:
    event = make_event(sensitivity="confidential")
    assert policy.sensitivity_refusal(event, fvm.audience("programstyrgrupp")) is None  # type: ignore[arg-type]
    refused = policy.sensitivity_refusal(event, fvm.audience("facklig-referensgrupp"))  # type: ignore[arg-type]
    assert refused is not None and refused.rule == "sensitivity" and "not cleared" in refused.reason
    assert policy.sensitivity_refusal(event, fvm.audience("media")) is not None  # type: ignore[arg-type]


def test_rule2_confidential_never_goes_on_the_intranet(fvm: Program) -> None:
    event = make_event(sensitivity="confidential")
    assert not policy.on_intranet(event)
    assert "intranet" not in policy.channels_for(event, fvm.audience("programstyrgrupp"), CHANNELS)  # type: ignore[arg-type]


def test_rule2_internal_never_reaches_external_groups(fvm: Program) -> None:
    event = make_event(sensitivity="internal")
    for external in ("media", "invanare", "privata-vardgivare"):
        refusal = policy.sensitivity_refusal(event, fvm.audience(external))  # type: ignore[arg-type]
        assert refusal is not None and "external" in refusal.reason
    assert policy.sensitivity_refusal(make_event(sensitivity="public"), fvm.audience("media")) is None  # type: ignore[arg-type]


# Rule 3 ---------------------------------------------------------------------------------------
def test_rule3_an_embargoed_event_is_held_until_the_instant_passes() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    event = make_event(embargo_until=(now + timedelta(minutes=5)).isoformat())
    assert policy.is_embargoed(event, now)
    assert not policy.is_embargoed(event, now + timedelta(minutes=5))
    assert not policy.is_embargoed(make_event(), now)


# Rule 4 ---------------------------------------------------------------------------------------
def test_rule4_the_programme_is_the_sender(fvm: Program) -> None:
    assert policy.sender_for(fvm).address == "fvm@vgregion.se"
    assert "FVM" in policy.sender_for(fvm).name


# Rule 5 ---------------------------------------------------------------------------------------
def test_rule5_first_bare_acronym_is_expanded() -> None:
    text = "Nytt från FVM. FVM fortsätter."
    out = policy.expand_first_mention(text, "FVM", "FVM (Framtidens vårdinformationsmiljö)")
    assert out == "Nytt från FVM (Framtidens vårdinformationsmiljö). FVM fortsätter."


def test_rule5_text_already_expanded_first_is_left_alone() -> None:
    text = "FVM (Framtidens vårdinformationsmiljö) går vidare. FVM:s tidplan."
    assert policy.expand_first_mention(text, "FVM", "FVM (Framtidens vårdinformationsmiljö)") == text


def test_rule5_words_containing_the_acronym_are_not_mentions() -> None:
    text = "FVM-programmet och FVMX"
    assert policy.expand_first_mention(text, "FVM", "FVM (X)") == text


def test_rule5_html_is_expanded_in_visible_text_never_in_tags() -> None:
    html = '<html><head><title>FVM</title></head><body><a title="FVM" href="/FVM">Läs om FVM</a></body></html>'
    out = policy.expand_first_mention_html(html, "FVM", "FVM (Framtidens vårdinformationsmiljö)")
    assert '<a title="FVM" href="/FVM">Läs om FVM (Framtidens vårdinformationsmiljö)</a>' in out
    assert "<title>FVM</title>" in out


# Rule 6 ---------------------------------------------------------------------------------------
def test_rule6_golive_is_scoped_to_its_area(fvm: Program) -> None:
    event = make_event("golive.milestone")
    assert policy.area_scope(event) == frozenset({"södra"})
    people = [Recipient("a", "A", "a@x.se", area="södra"), Recipient("b", "B", "b@x.se", area="västra")]
    kommuner = fvm.audience("kommuner")
    # the municipalities are a primary group, yet only those of the area hear about its go-live
    assert [p.id for p in policy.scope_members(people, kommuner, policy.area_scope(event))] == ["a"]  # type: ignore[arg-type]
    committee = fvm.audience("programstyrgrupp")
    assert len(policy.scope_members(people, committee, frozenset({"södra"}))) == 2  # type: ignore[arg-type]
    staff = fvm.audience("medarbetare-hs")
    assert [p.id for p in policy.scope_members(people, staff, frozenset({"södra"}))] == ["a"]  # type: ignore[arg-type]


def test_rule6_golive_refuses_groups_that_are_neither_primary_nor_area_scoped(fvm: Program) -> None:
    event = make_event("golive.milestone")
    assert policy.golive_refusal(event, fvm.audience("fortroendevalda")) is not None  # type: ignore[arg-type]
    assert policy.golive_refusal(event, fvm.audience("programstyrgrupp")) is None  # type: ignore[arg-type]
    assert policy.golive_refusal(event, fvm.audience("medarbetare-hs")) is None  # type: ignore[arg-type]


# Rule 7 ---------------------------------------------------------------------------------------
def test_rule7_clinical_leadership_alerts_only_groups_of_affected_professions(fvm: Program) -> None:
    event = make_event("design.decision", payload={
        "workstream": "Vårdadministration", "level": "clinical_leadership", "title": "Utskrivning",
        "summary": "Ny utskrivningsprocess.", "affected_professions": ["läkare", "sjuksköterska"]})
    lakare, chefer = fvm.audience("lakare"), fvm.audience("chefer-hs")
    assert policy.most_affected(event, lakare)  # type: ignore[arg-type]
    assert not policy.most_affected(event, chefer)  # type: ignore[arg-type]
    assert policy.channels_for(event, chefer, CHANNELS, most_affected=False) == ("intranet",)  # type: ignore[arg-type]


# Rule 8 ---------------------------------------------------------------------------------------
def test_rule8_a_person_in_several_groups_gets_the_highest_tier_variant_once(fvm: Program) -> None:
    anna = Recipient("anna", "Anna", "anna@x.se")
    bo = Recipient("bo", "Bo", "bo@x.se")
    audiences = {a: fvm.audience(a) for a in ("chefer-hs", "programstyrgrupp")}
    assigned = policy.assign_highest_tier({"chefer-hs": [anna, bo], "programstyrgrupp": [anna]}, audiences)  # type: ignore[arg-type]
    assert [r.id for r in assigned["programstyrgrupp"]] == ["anna"]
    assert [r.id for r in assigned["chefer-hs"]] == ["bo"]


def test_rule8_across_digests_one_digest_per_person_in_the_highest_tier_groups_variant(fvm: Program) -> None:
    committee, managers = fvm.audience("programstyrgrupp"), fvm.audience("chefer-hs")  # weekly, primary; stakeholder
    assert committee is not None and managers is not None
    both, only = Recipient("b", "", "", role="chef;programstyrgrupp"), Recipient("m", "", "", role="chef")
    order = [a.id for a in fvm.audiences]
    others_of_managers = {"programstyrgrupp": (committee, frozenset({"b"}))}
    others_of_committee = {"chefer-hs": (managers, frozenset({"b", "m"}))}
    # The managers' digest leaves out whoever gets the committee's; the committee's carries both groups' sections.
    assert policy.one_digest_each(managers, [both, only], "weekly", others_of_managers, order, {}) == {(): [only]}
    assert policy.one_digest_each(committee, [both], "weekly", others_of_committee, order, {}) == {
        ("chefer-hs",): [both]}
    # Monthly digests are another period: the weekly groups do not take a person's monthly one.
    assert policy.one_digest_each(managers, [both], "monthly", others_of_managers, order, {}) == {(): [both]}
    # A person who chose monthly digests gets every group's at that cadence: one, the highest tier's.
    monthly = {"b": policy.Choice(digest="monthly")}
    assert policy.one_digest_each(managers, [both], "monthly", others_of_managers, order, monthly) == {}
    assert policy.one_digest_each(committee, [both], "monthly", others_of_committee, order, monthly) == {
        ("chefer-hs",): [both]}
