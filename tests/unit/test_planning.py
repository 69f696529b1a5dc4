"""Plans for the seed documents' own situations."""

import pytest

from programs import Program
from services.tailor.directory import Recipient
from services.tailor.planning import UnknownAudienceError, plan_deliveries
from tests.conftest import make_event


def test_procurement_period_confidential_event_reaches_only_cleared_groups(
        fvm: Program, small_directory: list[Recipient]) -> None:
    event = make_event(sensitivity="confidential", importance="must_know")
    plan = plan_deliveries(event, fvm, small_directory)
    reached = {g.audience_id for g in plan.contract.groups}
    assert reached and all(fvm.audience(a).cleared_for_confidential for a in reached)  # type: ignore[union-attr]
    refused = {r.audience_id: r.rule for r in plan.contract.refused}
    assert refused["facklig-referensgrupp"] == "sensitivity"
    assert refused["media"] == "sensitivity"
    assert "intranet" not in plan.targets and "intranet" not in plan.contract.targeted


def test_may_2022_steering_decision_reaches_committees_by_email_and_teams(
        fvm: Program, small_directory: list[Recipient]) -> None:
    event = make_event("steering.decision", audiences=["politisk-styrgrupp", "programstyrgrupp", "strategisk-styrgrupp"])
    plan = plan_deliveries(event, fvm, small_directory)
    expected = {r.id for r in small_directory
                if r.role in ("politisk-styrgrupp", "programstyrgrupp", "strategisk-styrgrupp")}
    assert {r.id for people in plan.recipients("email").values() for r in people} == expected
    assert set(plan.recipients("teams")) == {"programstyrgrupp", "strategisk-styrgrupp"}
    assert plan.contract.targeted["intranet"] == {"intranet": 1}
    assert plan.contract.targeted["politisk-styrgrupp"] == {"email": 9}


def test_golive_for_sodra_reaches_sodra_staff_and_municipalities_not_vastra(
        fvm: Program, small_directory: list[Recipient]) -> None:
    plan = plan_deliveries(make_event("golive.milestone"), fvm, small_directory)
    chefer = plan.recipients("email")["chefer-hs"]
    assert chefer and {r.area for r in chefer} == {"södra"}
    groups = {g.audience_id: g for g in plan.contract.groups}
    assert "limited to area södra" in groups["medarbetare-hs"].reasons
    kommunal = [r for r in plan.recipients("email")["kommunal-ledning"]]
    assert kommunal and {r.area for r in kommunal} == {"södra"}
    assert {r.area for r in plan.recipients("email")["kommuner"]} == {"södra"}
    # committees (primary, not area-scoped) hear about every area's go-live
    assert len(plan.recipients("email")["programstyrgrupp"]) == len([r for r in small_directory if r.role == "programstyrgrupp"])
    refused = {r.audience_id: r.rule for r in plan.contract.refused}
    assert refused["fortroendevalda"] == "golive"


def test_clinical_leadership_decision_on_discharge_alerts_physicians_and_nurses_first(
        fvm: Program, small_directory: list[Recipient]) -> None:
    event = make_event("design.decision", payload={
        "workstream": "Vårdadministration", "level": "clinical_leadership",
        "title": "Nytt arbetssätt vid utskrivning", "summary": "Utskrivningen blir gemensam.",
        "affected_professions": ["läkare", "sjuksköterska"], "affected_processes": ["Utskrivning"]})
    plan = plan_deliveries(event, fvm, small_directory)
    emailed = {r.id for people in plan.recipients("email").values() for r in people}
    staff = [r for r in small_directory if r.role == "medarbetare"]
    for person in staff:
        if person.profession in ("läkare", "sjuksköterska"):
            assert person.id in emailed
        else:
            assert person.id not in emailed
    groups = {g.audience_id: g for g in plan.contract.groups}
    assert groups["chefer-hs"].channels == ("intranet",)
    assert groups["medarbetare-hs"].channels == ("intranet",)
    assert plan.contract.targeted["intranet"] == {"intranet": 1}


def test_awareness_event_sends_nothing_directly(fvm: Program, small_directory: list[Recipient]) -> None:
    plan = plan_deliveries(make_event("status.update", importance="awareness"), fvm, small_directory)
    assert set(plan.targets) == {"intranet"}


def test_a_group_with_a_teams_channel_gets_one_card_and_no_webhook_travels_in_the_plan(
        fvm: Program, small_directory: list[Recipient]) -> None:
    plan = plan_deliveries(make_event(audiences=["objektledning"]), fvm, small_directory)
    assert plan.contract.groups[0].channels == ("email", "teams", "intranet")
    assert plan.contract.targeted["objektledning"]["teams"] == 1
    assert "webhook" not in plan.contract.model_dump_json()


def test_unknown_explicit_audience_is_an_error(fvm: Program, small_directory: list[Recipient]) -> None:
    with pytest.raises(UnknownAudienceError, match="no-such-group"):
        plan_deliveries(make_event(audiences=["no-such-group"]), fvm, small_directory)


def test_a_person_in_two_targeted_groups_gets_one_email_in_the_variant_of_the_higher_tier(
        fvm: Program, small_directory: list[Recipient]) -> None:
    """Rule 8. FVM's own groups select by role, one per person, so this programme also lets every physician
    be one of the `lakare` group; a committee member who is a physician is then in two targeted groups."""
    lakare = fvm.audience("lakare")
    assert lakare is not None and lakare.tier.value == "stakeholder"
    both = fvm.model_copy(update={"audiences": tuple(
        a.model_copy(update={"members": {"profession": ("läkare",)}}) if a.id == "lakare" else a for a in fvm.audiences)})
    doctor = Recipient(id="dubbel-1", name="Dora Dubbel", email="dora@vgregion.se", role="programstyrgrupp",
                       profession="läkare", organisation="Sahlgrenska Universitetssjukhuset")
    plan = plan_deliveries(make_event(audiences=["programstyrgrupp", "lakare"]), both, [*small_directory, doctor])
    emailed = {g: [r.id for r in people] for g, people in plan.recipients("email").items()}
    ids = [i for people in emailed.values() for i in people]
    assert len(emailed["programstyrgrupp"]) > 1 and len(emailed["lakare"]) > 1
    assert len(ids) == len(set(ids))  # each person once
    assert "dubbel-1" in emailed["programstyrgrupp"] and "dubbel-1" not in emailed["lakare"]  # the primary group's


def test_fvis_decision_point_reaches_its_committees_and_all_staff_by_intranet(
        small_directory: list[Recipient]) -> None:
    from programs import load_program
    from tests.conftest import PROGRAMS_DIR

    fvis = load_program(PROGRAMS_DIR / "fvis.yaml")
    assert [e.id for e in fvis.baseline.timeline if "-" not in e.id] == ["B1", "B2", "B3", "B4", "B6", "B7"]
    event = make_event(program="fvis", payload={
        "committee": "Regionstyrelsen", "decision_code": "B3", "title": "Programmet fortsätter",
        "decision_text": "Regionstyrelsen beslutar att fortsätta programmet."})
    plan = plan_deliveries(event, fvis, small_directory)
    emailed = [r for people in plan.recipients("email").values() for r in people]
    assert emailed and all(r.organisation in ("Region Västerbotten", "Sussa samverkan") for r in emailed)
    groups = {g.audience_id: g for g in plan.contract.groups}
    assert groups["medarbetare-klinisk"].channels == ("intranet",)
    assert groups["regionstyrelsen"].recipients == 15


def test_programmes_sharing_a_directory_never_reach_each_others_people(
        fvm: Program, small_directory: list[Recipient]) -> None:
    plan = plan_deliveries(make_event("golive.milestone"), fvm, small_directory)
    reached = {r.organisation for people in plan.recipients("email").values() for r in people}
    assert {"Västra Götalandsregionen", "Södra Älvsborgs Sjukhus", "Borås kommun"} <= reached  # FVM's people were
    assert "Region Västerbotten" not in reached and "Sussa samverkan" not in reached
