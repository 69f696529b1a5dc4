import pytest

from programs import Program
from services.tailor.directory import member_filter, parse_recipients_csv, recipients_to_csv, synthetic_directory

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
        assert select_members(index, audience.members) == select_members(people, audience.members), audience.id


def test_an_alert_to_a_committee_examines_only_the_committee(fvm: Program) -> None:
    from services.tailor.index import DirectoryIndex

    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    index = DirectoryIndex(synthetic_directory(municipalities))
    committee = fvm.audience("strategisk-styrgrupp")
    assert committee is not None
    members = index.members(committee.members)
    assert len(members) == 12 and index.examined == 12 and len(index) > 60_000
