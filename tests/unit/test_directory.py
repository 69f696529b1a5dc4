from dataclasses import replace

import pytest

from programs import Program
from services.tailor.directory import (
    Recipient,
    member_filter,
    parse_recipients_csv,
    recipients_to_csv,
    synthetic_directory,
)

HEADER = "id,name,email,organisation,role,profession,area,municipality,options\n"


def test_csv_import_reports_each_rejected_row_with_its_reason() -> None:
    text = HEADER + (
        "p1,Anna A,anna@example.se,SU,medarbetare,läkare,västra,,\n"
        "p2,Bo B,not-an-email,SU,medarbetare,läkare,västra,,\n"
        "p1,Cid C,cid@example.se,SU,medarbetare,läkare,västra,,\n"
        "p4,Dag D,dag@example.se,SU,medarbetare,läkare,mellersta,,\n"
        "p5,Eva E,eva@example.se,Borås kommun,kommun-kontakt,,södra,Borås,1;2;3\n"
        "p6,Fia F,fia@example.se,Borås kommun,kommun-kontakt,,södra,Borås,4\n"
        f"p7,{'G' * 201},g@example.se,SU,medarbetare,,västra,,\n"
    )
    report = parse_recipients_csv(text, {"södra", "norra", "östra", "västra"})
    assert [r.id for r in report.accepted] == ["p1", "p5"]
    assert [(r.line, r.recipient_id, r.reason) for r in report.rejected] == [
        (3, "p2", "bad email address"),
        (4, "p1", "duplicate id"),
        (5, "p4", "unknown area 'mellersta'"),
        (7, "p6", "options must be a list of 1, 2, 3 separated by ;"),
        (8, "p7", "name longer than 200 characters"),  # an email command could not carry it
    ]
    assert report.accepted[1].options == frozenset({1, 2, 3})


def test_csv_without_required_columns_is_refused_whole() -> None:
    with pytest.raises(ValueError, match="lacks required columns"):
        parse_recipients_csv("id,name\np1,Anna\n")


def test_a_directory_written_as_csv_reads_back_the_same() -> None:
    report = parse_recipients_csv(HEADER + "p1,Anna,anna@example.se,SU,chef,chef,västra,,\n")
    assert parse_recipients_csv(recipients_to_csv(report.accepted)).accepted == report.accepted


def test_synthetic_directory_is_deterministic_and_the_size_of_vgr(fvm: Program) -> None:
    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    people = list(synthetic_directory(municipalities))
    again = list(synthetic_directory(municipalities))
    assert people == again
    staff = [p for p in people if p.id.startswith("hsa-")]
    assert 46_000 <= len(staff) <= 48_000
    assert len({p.municipality for p in people if p.municipality}) == 49
    assert len({p.id for p in people}) == len(people)


def test_selector_matches_every_attribute() -> None:
    person = parse_recipients_csv(HEADER + "p1,A,a@example.se,SU,medarbetare,läkare,västra,,2\n").accepted[0]
    assert member_filter({"role": ["medarbetare"], "profession": ["läkare", "sjuksköterska"]})(person)
    assert not member_filter({"role": ["medarbetare"], "area": ["södra"]})(person)
    assert member_filter({"options": ["2"]})(person)
    assert not member_filter({"options": ["3"]})(person)


def test_the_index_selects_exactly_what_a_scan_selects_for_every_group(fvm: Program) -> None:
    from programs import load_program
    from services.tailor.directory import select_members
    from services.tailor.index import DirectoryIndex
    from tests.conftest import PROGRAMS_DIR

    fvis = load_program(PROGRAMS_DIR / "fvis.yaml")
    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    people = list(synthetic_directory(municipalities, staff_scale=0.05))
    index = DirectoryIndex(people)
    for audience in (*fvm.audiences, *fvis.audiences):
        # The index holds what planning needs: no names or addresses (read per chunk when mail is composed).
        scanned = [replace(p, name="", email="") for p in select_members(people, audience.members)]
        assert select_members(index, audience.members) == scanned, audience.id


def test_the_index_keeps_the_directory_in_columns_and_makes_a_person_when_asked() -> None:
    from services.tailor.directory import People, ids_of, keep, keep_ids
    from services.tailor.index import DirectoryIndex

    people = [Recipient("a", "Anna", "a@x.se", organisation="SU", role="chef", area="västra", options=frozenset({2})),
              Recipient("b", "Bo", "b@x.se", organisation="SU", role="ssk", area="södra"),
              Recipient("c", "Cia", "c@x.se", organisation="NU", role="chef", area="södra", options=frozenset({2, 5}))]
    index = DirectoryIndex(people)
    bare = [replace(p, name="", email="") for p in people]
    assert list(index) == bare and index[-1] == bare[2] and index[1:] == bare[1:] and len(index) == 3
    chefs = index.members({"role": ["chef"]})
    assert isinstance(chefs, People) and list(chefs.positions) == [0, 2] and chefs == [bare[0], bare[2]]
    assert index.members({"role": ["chef"], "area": ["södra"]}) == [bare[2]]
    assert index.members({"options": ["5", "2"]}) == [bare[0], bare[2]]  # in directory order, each once
    assert index.members({}) == bare and index.members({"role": ["ingen"]}) == []
    southern = keep(chefs, lambda p: p.area == "södra")
    assert isinstance(southern, People) and list(ids_of(southern)) == ["c"] and southern[0:1] == [bare[2]]
    assert keep(bare, lambda p: p.role == "ssk") == [bare[1]] and list(ids_of(bare)) == ["a", "b", "c"]
    by_id = keep_ids(chefs, lambda i: i != "a")
    assert isinstance(by_id, People) and by_id == [bare[2]] and keep_ids(bare, lambda i: i == "b") == [bare[1]]
    found = index.positions_of(["c", "gone", "a"])
    assert found == {"a": 0, "c": 2} and index.people(["c", "gone", "a"], found) == [bare[2], bare[0]]
    assert index.recipients(["b", "gone"]) == {"b": bare[1]}
    assert list(index.ids()) == ["a", "b", "c"] and list(index.ids([2, 0])) == ["c", "a"] and index.id_at(1) == "b"


def test_the_planned_targets_are_written_as_json_id_by_id() -> None:
    import json

    from services.tailor.index import DirectoryIndex
    from services.tailor.store import targets_json

    odd = ["vgr:ÅSA-1", 'he said "hi"', "b\\c"]
    index = DirectoryIndex(Recipient(i, "", "", role="x") for i in odd)
    targets = {"email": {"grupp": index.members({"role": ["x"]}).ids(), "tom": iter(())}, "teams": {"grupp": []}}
    assert json.loads(targets_json(targets)) == {"email": {"grupp": odd, "tom": []}, "teams": {"grupp": []}}
    assert targets_json({}) == "{}"


def test_an_alert_to_a_committee_examines_only_the_committee(fvm: Program) -> None:
    from services.tailor.index import DirectoryIndex

    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    index = DirectoryIndex(synthetic_directory(municipalities))
    committee = fvm.audience("strategisk-styrgrupp")
    assert committee is not None
    members = index.members(committee.members)
    assert len(members) == 12 and index.examined == 12 and len(index) > 60_000


def test_an_attribute_with_more_distinct_values_than_two_bytes_hold_keeps_each_value() -> None:
    from services.tailor.index import DirectoryIndex

    people = [Recipient(f"p{n}", "", "", profession=f"yrke-{n}", options=frozenset({n})) for n in range(70_000)]
    index = DirectoryIndex(people)
    assert index[0] == people[0] and index[65_536] == people[65_536] and index[-1] == people[-1]
    assert list(index.members({"profession": ["yrke-69999"]}).ids()) == ["p69999"]
    assert list(index.members({"options": ["66000"]}).ids()) == ["p66000"]


def test_a_person_may_hold_several_roles_and_each_selects_them_in_the_index_as_in_a_scan(fvm: Program) -> None:
    from services.tailor.directory import select_members
    from services.tailor.index import DirectoryIndex

    report = parse_recipients_csv(HEADER + (
        "p1,Dana,dana@example.se,Närhälsan, chef ; programstyrgrupp;chef ,,södra,,\n"
        "p2,Sam,sam@example.se,,programstyrgrupp,,,,\n"
        "p3,Cia,cia@example.se,Närhälsan,chef,,södra,,\n"
        f"p4,Lo,lo@example.se,,{';'.join(['objektledning'] * 2 + ['x' * 95])},,,,\n"
        f"p5,Al,al@example.se,{'O' * 201},chef,,,,\n"))
    assert report.accepted[0].role == "chef;programstyrgrupp"  # trimmed, each role once
    assert [(r.recipient_id, r.reason) for r in report.rejected] == [
        ("p4", "role longer than 100 characters (all roles together)"),
        ("p5", "organisation longer than 200 characters")]  # the column's width: refused, never cut
    people = report.accepted
    index = DirectoryIndex(people)
    for audience_id, expected in (("programstyrgrupp", ["p1", "p2"]), ("chefer-hs", ["p1", "p3"])):
        audience = fvm.audience(audience_id)
        assert audience is not None
        assert [p.id for p in select_members(people, audience.members)] == expected
        assert [p.id for p in select_members(index, audience.members)] == expected
    assert not member_filter({"role": ["chef;programstyrgrupp"]})(people[1])


def test_a_person_may_name_their_manager_who_must_be_a_person_of_the_file() -> None:
    text = HEADER.strip() + ",manager\n" + (
        "c1,Cia Chef,cia@example.se,SU,chef,,västra,,,\n"
        "m1,Mo,mo@example.se,SU,medarbetare,läkare,västra,,,c1\n"
        "m2,Mi,mi@example.se,SU,medarbetare,läkare,västra,,,okand\n"
        "m3,My,my@example.se,SU,medarbetare,läkare,västra,,,m2\n"  # their manager was refused: so are they
        "m4,Me,me@example.se,SU,medarbetare,läkare,västra,,,m4\n"
        "m5,Ma,ma@example.se,SU,medarbetare,läkare,västra,,,c 1\n")
    report = parse_recipients_csv(text)
    assert [(r.id, r.manager) for r in report.accepted] == [("c1", ""), ("m1", "c1")]
    assert [(r.line, r.recipient_id, r.reason) for r in report.rejected] == [
        (4, "m2", "manager 'okand' is not a person of the file"),
        (5, "m3", "manager 'm2' is not a person of the file"),
        (6, "m4", "a person cannot be their own manager"),
        (7, "m5", "manager is not a directory id (letters, digits, . _ : -)")]
    assert parse_recipients_csv(recipients_to_csv(report.accepted)).accepted == report.accepted


def test_the_synthetic_directorys_staff_each_have_a_manager_of_their_own_area(fvm: Program) -> None:
    from services.tailor.index import DirectoryIndex

    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    people = list(synthetic_directory(municipalities, staff_scale=0.05))
    by_id = {p.id: p for p in people}
    staff = [p for p in people if p.role == "medarbetare"]
    assert staff and all(by_id[p.manager].role == "chef" and by_id[p.manager].area == p.area for p in staff)
    index = DirectoryIndex(people)
    chef = staff[0].manager
    assert [p.id for p in index.members({"manager": [chef]})] == [p.id for p in people if p.manager == chef]
