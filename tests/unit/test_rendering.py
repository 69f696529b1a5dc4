import json
from pathlib import Path

import pytest

from contracts.deliveries import PersonalLink, Slot
from programs import Program
from programs.labels import sv_date
from services.common.links import FEEDBACK
from services.tailor.channels import COMPOSERS, check_templates, preview
from services.tailor.rendering import Renderer, TemplateProblem, personal_text
from services.tailor.samples import sample_events
from tests.conftest import TEMPLATES_DIR, make_event


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(TEMPLATES_DIR, "http://budkavle.test")


def test_every_template_renders_every_sample_event_for_every_group(renderer: Renderer, fvm: Program) -> None:
    check_templates(renderer, fvm, sample_events("fvm"), COMPOSERS)  # what start-up runs: raises on a bad template
    rendered = 0
    for event in sample_events("fvm"):
        for audience in fvm.audiences:
            for channel in audience.channels:
                parts = preview(event, fvm, audience, channel, renderer, COMPOSERS)
                assert parts and all(text.strip() for text in parts.values()), (event.type, audience.id, channel)
                assert any(event.payload.title in text for text in parts.values()), (event.type, audience.id, channel)
                rendered += 1
    assert rendered == len(sample_events("fvm")) * sum(len(a.channels) for a in fvm.audiences)


def test_detailed_tone_carries_rationale_and_consequences_plain_does_not(renderer: Renderer, fvm: Program) -> None:
    event = make_event("steering.decision")
    detailed = renderer.email(event, fvm, fvm.audience("politisk-styrgrupp"))  # type: ignore[arg-type]
    plain = renderer.email(event, fvm, fvm.audience("medarbetare-hs"))  # type: ignore[arg-type]
    assert "Motivering: Förhandlingarna är klara." in detailed.text
    assert "Konsekvenser: Södra först." in detailed.text
    assert "Motivering" not in plain.text and "Förhandlingarna" not in plain.text
    assert "invånare, patient och medarbetare" in plain.text


def test_every_message_expands_the_acronym_at_first_mention(renderer: Renderer, fvm: Program) -> None:
    for event in sample_events("fvm"):
        for audience in fvm.audiences:
            mail = renderer.email(event, fvm, audience)
            assert mail.text.index("FVM (Framtidens vårdinformationsmiljö)") == mail.text.index("FVM")
            card = renderer.teams_card(event, fvm, audience)
            body = card["body"][2]["text"]
            if "FVM" in body:
                assert body.index("FVM (Framtidens vårdinformationsmiljö)") == body.index("FVM")


def test_publisher_text_is_escaped_in_html(renderer: Renderer, fvm: Program) -> None:
    event = make_event(payload={"committee": "<b>Styrgrupp</b>", "title": "<script>alert(1)</script>",
                                "decision_text": "a & b"})
    mail = renderer.email(event, fvm, fvm.audience("programstyrgrupp"))  # type: ignore[arg-type]
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "a &amp; b" in mail.html
    assert "<script>alert(1)</script>" in mail.subject  # subjects are plain text, escaped by the mail encoder


def test_municipal_groups_see_vastkom_beside_the_programme(renderer: Renderer, fvm: Program) -> None:
    event = make_event()
    municipal = renderer.email(event, fvm, fvm.audience("kommuner"))  # type: ignore[arg-type]
    regional = renderer.email(event, fvm, fvm.audience("programstyrgrupp"))  # type: ignore[arg-type]
    assert "VästKom" in municipal.html and "VästKom" not in regional.html


def test_teams_card_is_an_adaptive_card_with_facts_questions_and_a_counted_read_more(renderer: Renderer,
                                                                                    fvm: Program) -> None:
    event = make_event()
    card = renderer.teams_card(event, fvm, fvm.audience("programstyrgrupp"))  # type: ignore[arg-type]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    facts = {f["title"]: f["value"] for f in card["body"][3]["facts"]}
    assert facts["Beslutande organ"] == "Regionstyrelsen"
    read_more = card["actions"][0]
    assert read_more["title"] == "Läs mer" and read_more["url"].startswith("http://budkavle.test/r/")
    token = read_more["url"].rsplit("/", 1)[1]
    # The group's own token: the event and the group, no person (a channel post is the same for everyone).
    assert renderer.signer.verify(FEEDBACK, token) == {"pr": "fvm", "ev": str(event.event_id),
                                                       "au": "programstyrgrupp"}
    answers = [a for block in card["body"] if block["type"] == "ActionSet" for a in block["actions"]]
    assert [(a["type"], a["title"]) for a in answers] == [("Action.OpenUrl", t) for t in ("Ja", "Nej", "Ja", "Delvis", "Nej")]
    assert answers[3]["url"] == f"http://budkavle.test/feedback/{token}?q=involved&a=delvis"
    json.dumps(card)  # serialisable


def test_a_decisions_provenance_and_appeal_read_in_plain_swedish_in_the_mail_the_card_and_the_item(
        renderer: Renderer, fvm: Program) -> None:
    event = make_event(payload={
        "committee": "Regionstyrelsen", "title": "Ny tidplan", "decision_text": "Regionstyrelsen godkänner tidplanen.",
        "provenance": {"registration_number": "RS 2022-03301", "minutes_paragraph": "§ 112",
                       "meeting_date": "2022-05-17", "body": "Regionstyrelsen",
                       "appeal": {"how": "Överklaga genom laglighetsprövning hos förvaltningsrätten.",
                                  "by": "2022-06-15"}}})
    group = fvm.audience("politisk-styrgrupp")
    assert group is not None
    said = ("Regionstyrelsen fattade beslutet vid sammanträdet 17 maj 2022 (§ 112 i protokollet, diarienummer "
            "RS 2022-03301).")
    mail = renderer.email(event, fvm, group)
    assert said in mail.text and said in mail.html
    assert ("Överklagande: beslutet kan överklagas senast 15 juni 2022. Överklaga genom laglighetsprövning hos "
            "förvaltningsrätten.") in mail.text
    card = renderer.teams_card(event, fvm, group)
    facts = {f["title"]: f["value"] for block in card["body"] if block["type"] == "FactSet" for f in block["facts"]}
    assert facts["Diarienummer"] == "RS 2022-03301"
    assert facts["Protokoll"] == "Regionstyrelsen, 17 maj 2022, § 112"
    assert facts["Överklagande"].startswith("Senast 15 juni 2022.")
    item = preview(event, fvm, group, "intranet", renderer, COMPOSERS)
    assert "diarienummer RS 2022-03301" in "".join(item.values())


def test_an_email_asks_both_questions_with_the_persons_own_link_left_to_the_email_service(
        renderer: Renderer, fvm: Program) -> None:
    rendered = renderer.email(make_event(), fvm, fvm.audience("medarbetare-hs"))  # type: ignore[arg-type]
    feedback = Slot(slot=PersonalLink.FEEDBACK)
    text, html = personal_text(rendered.text), personal_text(rendered.html)
    for body in (text, html):
        shown = "".join(p if isinstance(p, str) else "{" + p.slot + "}" for p in body)
        assert "Förstod du informationen?" in shown and "Känner du dig delaktig?" in shown
        assert "/r/{feedback}" in shown and "\x00" not in shown
        assert body.count(feedback) == 6  # five answers and "Läs mer", each the person's own
    assert "/feedback/{feedback}?q=understood&a=ja" in "".join(p if isinstance(p, str) else "{feedback}" for p in text)
    assert "/feedback/{feedback}?q=involved&amp;a=delvis" in "".join(
        p if isinstance(p, str) else "{feedback}" for p in html)


def test_template_referencing_a_missing_field_is_found_at_check_time(tmp_path: Path, fvm: Program) -> None:
    broken = tmp_path / "templates"
    for src in TEMPLATES_DIR.rglob("*.j2"):
        dest = broken / src.relative_to(TEMPLATES_DIR)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(src.read_text())
    (broken / "parts" / "status_update.txt.j2").write_text("{{ p.no_such_field }}")
    with pytest.raises(TemplateProblem, match="no_such_field"):
        check_templates(Renderer(broken, "http://x"), fvm, sample_events("fvm"), COMPOSERS)


def test_dates_read_in_swedish() -> None:
    from datetime import date

    assert sv_date(date(2022, 5, 17)) == "17 maj 2022"


def test_a_subject_that_mentions_the_acronym_reads_it_expanded(renderer: Renderer, fvm: Program) -> None:
    event = make_event(payload={"committee": "Programstyrgrupp", "title": "FVM får ny tidplan",
                                "decision_text": "FVM går vidare."})
    mail = renderer.email(event, fvm, fvm.audience("programstyrgrupp"))  # type: ignore[arg-type]
    assert mail.subject == "Programstyrgrupp har beslutat: FVM (Framtidens vårdinformationsmiljö) får ny tidplan"


def test_the_longest_committee_and_title_an_event_may_have_still_make_a_sendable_email(fvm: Program) -> None:
    from contracts.deliveries import SendEmail
    from services.tailor.channels import COMPOSERS, Composition
    from services.tailor.directory import Recipient

    event = make_event(payload={"committee": "Kommitté " * 22, "title": "Rubrik " * 28, "decision_text": "Text."})
    assert len(event.payload.committee) == 198 and len(event.payload.title) == 196  # type: ignore[union-attr]
    audience = fvm.audiences[0]
    target = Composition(event, fvm, audience.id, audience, (Recipient("p1", "P", "p1@example.se"),), (),
                         event.occurred_at)
    [command] = COMPOSERS["email"].compose(target, Renderer(TEMPLATES_DIR, "http://x"))
    assert isinstance(command, SendEmail)
    assert len(command.subject) <= 300 and command.subject.endswith("…") and "  " not in command.subject


def test_news_that_asks_to_be_acknowledged_carries_each_persons_link_and_the_groups_on_its_card(
        renderer: Renderer, fvm: Program) -> None:
    group = fvm.audience("programstyrgrupp")
    assert group is not None
    event = make_event(audiences=["programstyrgrupp"], acknowledge_by="2026-12-03T11:00:00Z")
    mail = renderer.email(event, fvm, group)
    text = "".join(p if isinstance(p, str) else "{" + p.slot + "}" for p in personal_text(mail.text))
    assert "Bekräfta senast 3 december 2026 att du tagit del av informationen:" in text
    assert "Jag har tagit del av informationen: http://budkavle.test/ack/{feedback}" in text  # their own token
    assert ">Jag har tagit del av informationen</a>" in mail.html
    reminder = renderer.email(event, fvm, group, reminder=True)
    assert reminder.subject.startswith("Påminnelse: ") and "du har ännu inte bekräftat" in reminder.text
    card = renderer.teams_card(event, fvm, group)
    [ack] = [a for block in card["body"] if block["type"] == "ActionSet" for a in block["actions"]
             if a["title"] == "Jag har tagit del av informationen"]
    assert ack["url"].startswith("http://budkavle.test/ack/") and "{" not in ack["url"]  # the group's signed link
    plain = make_event(audiences=["programstyrgrupp"])
    assert "/ack/" not in renderer.email(plain, fvm, group).text
    assert "tagit del" not in json.dumps(renderer.teams_card(plain, fvm, group), ensure_ascii=False)
