"""The console on the embedded platform, in headless Chromium, signed in through the local provider's form: an
editor composes a clinical-leadership design decision, watches the plan follow the form, previews the mail and
the Teams card (drawn by Microsoft's renderer, served by Budkavle), saves a draft and submits it; being
must-know it waits for approval (the programme files as they are) and nothing is sent, its author cannot approve
it, and an approver approves it from the queue; the editor watches the delivery reach every group; the keyboard
alone goes from "Nytt meddelande" to "Publicera"; a reader and
another programme's editor can do nothing of it. axe-core on every page."""

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import Platform, axe_violations, sign_in_in_chromium, signed_in
from tests.waiting import wait_until

TITLE = "Nytt arbetssätt vid utskrivning"
PROGRAMME = "Framtidens vårdinformationsmiljö"
#: A tenth of the demo directory: the groups stay the same, and their mails go out while the test watches.
STAFF_SCALE = 0.1
#: The programme files' approval rules hold: must-know waits for a second person.
APPROVAL_RULES = True


@pytest.fixture
def page(platform: Platform, browser: Any) -> Iterator[Any]:
    """A browser page of its own, which meets nothing but Budkavle once signed in (no CDN, no font service)."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def named(page: Any, name: str) -> Any:
    """The form's input for a field of the contract: each is named by the contract's field name."""
    return page.locator(f'[name="{name}"]')


def only_budkavle(page: Any, platform: Platform) -> list[str]:
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(platform.url) else elsewhere.append(r.url))
    return elsewhere


def test_an_editor_composes_sees_the_plan_previews_every_channel_and_an_approver_lets_it_go_out(
        platform: Platform, page: Any, browser: Any, tmp_path: Path) -> None:
    sign_in_in_chromium(page, platform, "redaktor@fvm.example", "/console/")
    elsewhere = only_budkavle(page, platform)
    page.get_by_role("link", name=f"Nytt meddelande i {PROGRAMME}").click()
    assert axe_violations(page) == []
    page.get_by_role("region", name=PROGRAMME).get_by_role("link", name="Designbeslut").click()
    page.wait_for_url(re.compile(r"/console/new/design\.decision\?program=fvm$"))

    named(page, "importance").select_option("must_know")
    named(page, "payload.workstream").fill("Vårdadministration")
    named(page, "payload.level").select_option("clinical_leadership")
    named(page, "payload.title").fill(TITLE)
    named(page, "payload.summary").fill("Utskrivningen planeras gemensamt av avdelning och kommun.")
    named(page, "payload.affected_professions").fill("sjuksköterska")
    for group in ("Sjuksköterskor i VGR:s hälso- och sjukvård", "Läkare i VGR:s hälso- och sjukvård",
                  "Programstyrgrupp", "Media"):
        page.get_by_label(re.compile(f"^{re.escape(group)} \\(")).check()

    plan = page.locator("#plan")
    plan.get_by_text("Media: internt: aldrig till externa grupper (regel: känslighet)").wait_for()
    assert [row.locator("td").first.inner_text().splitlines()[0] for row in plan.get_by_role("row").all()[1:]] == [
        "Programstyrgrupp", "Läkare i VGR:s hälso- och sjukvård", "Sjuksköterskor i VGR:s hälso- och sjukvård"]
    nurses = plan.get_by_role("row").filter(has_text="Sjuksköterskor i VGR")
    assert "klinisk ledning: bland de mest berörda, får besked direkt" in nurses.inner_text()
    assert "inte bland de mest berörda" in plan.get_by_role("row").filter(has_text="Läkare i VGR").inner_text()
    assert plan.get_by_role("button", name="Förhandsgranska Teams för Programstyrgrupp").count() == 0

    # The whole programme leadership should hear it at once: the plan follows the form as it changes.
    named(page, "payload.affected_professions").fill("")
    teams = plan.get_by_role("button", name="Förhandsgranska Teams för Programstyrgrupp")
    teams.wait_for()
    teams.click()
    card = page.locator("#preview .card .ac-adaptiveCard")  # what Microsoft's renderer draws
    card.wait_for()
    assert TITLE in card.inner_text()
    plan.get_by_role("button", name="Förhandsgranska E-post för Sjuksköterskor i VGR:s hälso- och sjukvård").click()
    frame = page.locator("#preview iframe")
    frame.wait_for()
    assert frame.get_attribute("sandbox") == ""
    assert TITLE in page.frame_locator("#preview iframe").locator("body").inner_text()
    subject = page.locator("#preview pre").inner_text().splitlines()[0]
    assert subject.startswith("Ämne: ") and subject.endswith(TITLE)
    page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")  # painted
    page.locator("#preview").screenshot(path=str(tmp_path / "console-preview-email.png"))
    page.screenshot(path=str(tmp_path / "console-compose.png"), full_page=True)
    assert axe_violations(page) == []

    plan.get_by_text("Meddelandet väntar på godkännande när du skickar det: viktighet: måste veta").wait_for()
    page.get_by_role("button", name="Spara utkast").last.click()
    # The page has two status lines: the notice, and the plan's summary once htmx has brought it.
    page.get_by_role("status").filter(has_text="Utkastet är sparat.").wait_for()
    assert named(page, "payload.title").input_value() == TITLE
    assert page.get_by_label(re.compile("^Programstyrgrupp \\(")).is_checked()

    mails_before = len(list((platform.data_dir / "mail").glob("*.eml")))
    page.get_by_role("button", name="Publicera").click()
    page.wait_for_url(re.compile(r"/console/events/[0-9a-f-]{36}\?published=true$"))
    assert page.get_by_role("status").inner_text().startswith("Meddelandet väntar på godkännande.")
    assert page.get_by_role("heading", name="Godkännande: Väntar på godkännande").is_visible()
    assert page.get_by_role("button", name="Godkänn och skicka").count() == 0  # its author may not
    assert "en annan godkännare måste besluta" in page.content()
    assert axe_violations(page) == []

    # An approver, in a browser of their own, finds it in the queue and approves it.
    approver_context = browser.new_context()
    try:
        approver = approver_context.new_page()
        sign_in_in_chromium(approver, platform, "godkannare@fvm.example", "/console/approvals")
        assert axe_violations(approver) == []
        waiting = approver.get_by_role("row").filter(has_text=TITLE)
        assert "redaktor@fvm.example" in waiting.inner_text() and "måste veta" in waiting.inner_text()
        # Nothing of it was sent while it waited: the gateway has no plan of it, and no mail left.
        assert "Ingen leverans planerad ännu." in page.locator("#progress").inner_text()
        assert len(list((platform.data_dir / "mail").glob("*.eml"))) == mails_before
        waiting.get_by_role("link", name=TITLE).click()
        approver.get_by_label("Kommentar (krävs för att avslå)").fill("Stämmer med beslutet.")
        approver.get_by_role("button", name="Godkänn och skicka").click()
        approver.get_by_role("status").filter(has_text="Godkänt.").wait_for()
        assert "Godkänt av godkannare@fvm.example (Stämmer med beslutet.)" in approver.content()
        assert axe_violations(approver) == []
    finally:
        approver_context.close()
    page.get_by_role("heading", name="Leverans: Levererad").wait_for(timeout=90_000)  # the page's own asking
    progress = page.locator("#progress")
    for row in progress.get_by_role("row").all()[1:]:
        targeted, sent, _deferred, failed = (int(c.split()[0]) for c in row.locator("td.num").all_inner_texts())
        assert targeted > 0 and sent + failed == targeted, row.inner_text()
    assert "redaktor@fvm.example" in page.locator("dl").first.inner_text()
    page.screenshot(path=str(tmp_path / "console-event.png"), full_page=True)
    assert axe_violations(page) == []
    page.get_by_role("button", name="Förhandsgranska Teams för Programstyrgrupp").click()
    page.locator("#preview .card .ac-adaptiveCard").wait_for()

    page.goto(f"{platform.url}/console/new")
    assert TITLE not in page.content()  # the published draft is no longer kept
    page.goto(f"{platform.url}/console/groups?program=fvm")
    row = page.get_by_role("row").filter(has_text="Sjuksköterskor i VGR")
    people, undeliverable = (int(n) for n in row.locator("td.num").all_inner_texts())
    assert "profession: sjuksköterska" in row.inner_text() and people > 0 and undeliverable == 0  # none bounced
    assert axe_violations(page) == []
    assert elsewhere == []


def test_the_keyboard_alone_goes_from_nytt_meddelande_to_publicera_at_200_percent_zoom(
        platform: Platform, browser: Any) -> None:
    """Half the width of a laptop's screen is what 200 % zoom leaves; nothing scrolls sideways, and Tab, typing,
    Space and Enter write and publish a status update."""
    context = browser.new_context(viewport={"width": 640, "height": 900})
    try:
        page = context.new_page()
        sign_in_in_chromium(page, platform, "redaktor@fvm.example", "/console/")
        page.get_by_role("link", name=f"Nytt meddelande i {PROGRAMME}").focus()
        page.keyboard.press("Enter")
        page.get_by_role("region", name=PROGRAMME).get_by_role("link", name="Lägesrapport").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/console/new/status\.update\?program=fvm$"))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        typed = {"payload.title": "Läget i december", "payload.summary": "Arbetet går enligt plan."}
        for _ in range(200):
            page.keyboard.press("Tab")
            focused = page.evaluate("({name: document.activeElement.name || '', value: document.activeElement.value,"
                                    " text: document.activeElement.innerText || '', tag: document.activeElement.tagName,"
                                    " type: document.activeElement.type || ''})")
            if focused["name"] in typed:
                page.keyboard.type(typed.pop(focused["name"]))
            elif focused["name"] == "audiences" and focused["value"] == "programstyrgrupp":
                page.keyboard.press("Space")
            elif focused["tag"] == "BUTTON" and focused["text"] == "Publicera":
                assert typed == {}
                page.keyboard.press("Enter")
                break
        else:
            pytest.fail("Tab never reached Publicera")
        page.wait_for_url(re.compile(r"/console/events/[0-9a-f-]{36}\?published=true$"))
        assert page.get_by_role("heading", name="Läget i december").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()


def form_of(client: httpx.Client, url: str) -> dict[str, str]:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return {"program": re.search(r'name="program" value="([^"]+)"', page.text)[1],  # type: ignore[index]
            "csrf": re.search(r'name="csrf" value="([^"]+)"', page.text)[1]}  # type: ignore[index]


def test_a_reader_and_another_programmes_editor_can_do_nothing_of_it(platform: Platform, browser: Any) -> None:
    """A reader sees events but no "Publicera"; an FVIS editor can neither open nor post an FVM draft, and the
    gateway refuses their crafted post (403); a form without its CSRF token, or with a field the contract
    refuses, writes nothing and says why."""
    url = platform.url
    fields = {"importance": "awareness", "payload.title": "Utkast för FVM", "payload.summary": "Text."}
    with signed_in(url, "redaktor@fvm.example") as editor:
        form = form_of(editor, f"{url}/console/new/status.update?program=fvm")
        saved = editor.post(f"{url}/console/new/status.update", data={**form, **fields, "action": "save"})
        assert saved.status_code == 303
        draft_id = re.search(r"draft=([0-9a-f-]{36})", saved.headers["location"])[1]  # type: ignore[index]
        forged = editor.post(f"{url}/console/new/status.update",
                             data={**form, **fields, "csrf": "forged", "action": "save"})
        assert forged.status_code == 403 and "säkerhetskod" in forged.text
        long = editor.post(f"{url}/console/new/status.update",
                           data={**form, **fields, "payload.title": "x" * 201, "action": "publish"})
        assert long.status_code == 422 and "Får vara högst 200 tecken." in long.text
        drafts = editor.get(f"{url}/console/new").text
        assert drafts.count("Utkast för FVM") == 1
        media = editor.post(f"{url}/console/new/status.update/preview?audience=media&channel=email",
                            data={**form, **fields, "sensitivity": "internal", "audiences": "media"})
        assert "Gruppen nås inte av meddelandet: internt: aldrig till externa grupper (regel: känslighet)." in media.text
        assert "<iframe" not in media.text
        events = httpx.get(f"{url}/v1/events?program=fvm", headers={"Authorization": f"Bearer {platform.token}"})
        assert "x" * 201 not in events.text

    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in_in_chromium(page, platform, "lasare@fvm.example", "/console/")
        assert page.get_by_text("inte publicera").is_visible()
        assert page.get_by_role("link", name=f"Nytt meddelande i {PROGRAMME}").count() == 0
        page.goto(f"{url}/console/new/status.update?program=fvm&draft={draft_id}")
        assert page.get_by_role("button", name="Publicera").count() == 0
        assert axe_violations(page) == []
    finally:
        context.close()

    with signed_in(url, "redaktor@fvis.example") as other:
        assert other.get(f"{url}/console/new/status.update?program=fvm&draft={draft_id}").status_code == 403
        assert other.get(f"{url}/console/new/status.update?program=fvis&draft={draft_id}").status_code == 404
        own = form_of(other, f"{url}/console/new/status.update?program=fvis")
        crafted = other.post(f"{url}/console/new/status.update",
                             data={**own, **fields, "program": "fvm", "draft_id": draft_id, "draft_version": "1",
                                   "action": "save"})
        assert crafted.status_code == 403
        session = {"Authorization": f"Session {other.cookies['budkavle_session']}", "X-CSRF-Token": own["csrf"]}
        straight = other.post(f"{url}/v1/events", headers=session, json={
            "type": "status.update", "program": "fvm", "publisher": "x", "importance": "awareness",
            "payload": {"title": "Inte mitt program", "summary": "Text."}})
        assert straight.status_code == 403
        assert other.put(f"{url}/v1/drafts/{draft_id}", headers=session,
                         json={"version": 1, "fields": {}}).status_code == 404
    with signed_in(url, "redaktor@fvm.example") as editor:
        kept = editor.get(f"{url}/console/new/status.update?program=fvm&draft={draft_id}")
        assert 'value="Utkast för FVM"' in kept.text


def test_an_editor_corrects_a_message_that_went_out_from_its_page_and_the_correction_says_what_changed(
        platform: Platform) -> None:
    """The correction form starts from the message as it reads; only what was changed is sent as corrected,
    with what changed and why; a form that changes nothing, or lacks why, sends nothing."""
    auth = {"Authorization": f"Bearer {platform.token}"}
    published = httpx.post(f"{platform.url}/v1/events", headers=auth, timeout=30, json={
        "type": "status.update", "program": "fvm", "publisher": "FVM programkontor", "importance": "awareness",
        "audiences": ["programstyrgrupp"], "payload": {"title": "Läget i januari", "summary": "Utbildningen börjar i mars."}})
    assert published.status_code == 202, published.text
    event_id = published.json()["event_id"]
    url = f"{platform.url}/console/events/{event_id}"
    wait_until(lambda: httpx.get(f"{platform.url}/v1/events/{event_id}", headers=auth).json()["status"] == "delivered",
               60, "the message to go out")
    with signed_in(platform, "lasare@fvm.example") as reader:
        assert reader.get(f"{url}/correction").status_code == 403
    with signed_in(platform, "redaktor@fvm.example") as editor:
        assert "Rätta utskicket" in editor.get(url).text
        form = editor.get(f"{url}/correction")
        assert form.status_code == 200 and 'value="Läget i januari"' in form.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]  # type: ignore[index]
        same = {"csrf": csrf, "payload.title": "Läget i januari", "payload.summary": "Utbildningen börjar i mars.",
                "what_changed": "Inget.", "reason": "Inget."}
        unchanged = editor.post(f"{url}/correction", data=same)
        assert unchanged.status_code == 422 and "Inget fält är ändrat" in unchanged.text
        why_missing = editor.post(f"{url}/correction", data={**same, "payload.summary": "I april.", "reason": ""})
        assert why_missing.status_code == 422 and 'id="e-reason"' in why_missing.text
        sent = editor.post(f"{url}/correction", data={
            **same, "payload.summary": "Utbildningen börjar i april.", "what_changed": "Utbildningen börjar i april.",
            "reason": "Fel månad i det första utskicket."})
        assert sent.status_code == 303, sent.text
        correction_id = sent.headers["location"].rsplit("/", 1)[1].split("?")[0]
    correction = httpx.get(f"{platform.url}/v1/events/{correction_id}", headers=auth).json()
    assert correction["event"]["payload"]["corrected"] == {"summary": "Utbildningen börjar i april."}
    assert correction["event"]["payload"]["corrects"] == event_id and correction["event"]["publisher"] == "redaktor@fvm.example"


def test_an_editor_stops_an_embargoed_message_from_its_page_and_nothing_of_it_is_sent(platform: Platform) -> None:
    auth = {"Authorization": f"Bearer {platform.token}"}
    embargo = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    published = httpx.post(f"{platform.url}/v1/events", headers=auth, timeout=30, json={
        "type": "status.update", "program": "fvm", "publisher": "FVM programkontor", "importance": "awareness",
        "embargo_until": embargo, "audiences": ["programstyrgrupp"],
        "payload": {"title": "Läget under embargo", "summary": "Släpps i morgon."}})
    event_id = published.json()["event_id"]
    status_url = f"{platform.url}/v1/events/{event_id}"
    wait_until(lambda: httpx.get(status_url, headers=auth).json()["status"] == "embargoed", 60, "the embargo")
    url = f"{platform.url}/console/events/{event_id}"
    with signed_in(platform, "redaktor@fvm.example") as editor:
        page = editor.get(url).text
        assert "Stoppa utskicket" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]  # type: ignore[index]
        stopped = editor.post(f"{url}/cancellation", data={"csrf": csrf, "comment": "Ersätts av ett nytt besked."})
        assert stopped.status_code == 303 and stopped.headers["location"].endswith("?done=cancel")
        after = editor.get(stopped.headers["location"]).text
        assert "Stoppat. Inget av meddelandet skickas." in after and "Stoppa utskicket" not in after
        assert "Stoppat av redaktor@fvm.example (Ersätts av ett nytt besked.)" in after
    assert httpx.get(status_url, headers=auth).json()["status"] == "cancelled"


def test_a_draft_changed_meanwhile_is_not_overwritten_and_newsletter_sections_move(platform: Platform) -> None:
    """Two editors save one draft from the same version: the second is told whose change is newer, and their
    text stays in the form. A newsletter's sections are added, moved and removed with the form's buttons."""
    url = platform.url
    with signed_in(url, "redaktor@fvm.example") as first, signed_in(url, "admin@budkavle.example") as second:
        form = form_of(first, f"{url}/console/new/newsletter.issue?program=fvm")
        fields = {"importance": "awareness", "payload.title": "Nyhetsbrev december",
                  "payload.sections.0.heading": "Utbildning", "payload.sections.0.body": "Kurserna börjar."}
        saved = first.post(f"{url}/console/new/newsletter.issue", data={**form, **fields, "action": "save"})
        draft = re.search(r"draft=([0-9a-f-]{36})", saved.headers["location"])[1]  # type: ignore[index]
        theirs = form_of(second, f"{url}/console/new/newsletter.issue?program=fvm&draft={draft}")
        mine = {**form, **fields, "draft_id": draft, "draft_version": "1"}
        assert first.post(f"{url}/console/new/newsletter.issue",
                          data={**mine, "payload.title": "Först", "action": "save"}).status_code == 303
        late = second.post(f"{url}/console/new/newsletter.issue",
                           data={**theirs, **fields, "draft_id": draft, "draft_version": "1",
                                 "payload.title": "Sent", "action": "save"})
        assert late.status_code == 409
        assert "Utkastet ändrades av redaktor@fvm.example" in late.text and 'value="Sent"' in late.text
        kept = first.get(f"{url}/console/new/newsletter.issue?program=fvm&draft={draft}")
        assert 'value="Först"' in kept.text

        added = first.post(f"{url}/console/new/newsletter.issue",
                           data={**form, **fields, "action": "add:payload.sections"})
        assert 'name="payload.sections.1.heading"' in added.text
        two = {**fields, "payload.sections.1.heading": "Driftstopp", "payload.sections.1.body": "Natten till fredag."}
        moved = first.post(f"{url}/console/new/newsletter.issue", data={**form, **two, "action": "up:payload.sections.1"})
        assert moved.text.index("Driftstopp") < moved.text.index("Utbildning")
        removed = first.post(f"{url}/console/new/newsletter.issue",
                             data={**form, **two, "action": "remove:payload.sections.0"})
        assert "Utbildning" not in removed.text and 'value="Driftstopp"' in removed.text


def directory_of(platform: Platform) -> list[Any]:
    """The platform's directory as its tailor keeps it."""
    from services.tailor.directory import Recipient

    with sqlite3.connect(platform.data_dir / "tailor.db") as db:
        rows = db.execute("SELECT id, name, email, organisation, role, profession, area, municipality, options "
                          "FROM tailor_recipients").fetchall()
    fields = ("id", "name", "email", "organisation", "role", "profession", "area", "municipality")
    return [Recipient(**dict(zip(fields, row[:8], strict=True)), options=frozenset(int(o) for o in row[8].split(";") if o))
            for row in rows]


def test_an_admin_reads_the_directory_files_report_and_nothing_changes_until_confirmed(
        platform: Platform, page: Any, tmp_path: Path) -> None:
    """Runs last in the module: it changes the directory (by one person)."""
    from services.tailor.directory import Recipient, recipients_to_csv

    people = directory_of(platform)
    newcomer = Recipient(id="ny-medarbetare-1", name="Nina Ny", email="nina.ny@example.se", role="medarbetare")
    good = recipients_to_csv([*people, newcomer])
    (tmp_path / "bad.csv").write_text(good + "trasig-1,Trasig Rad,inte-en-adress,,,,,,\n", encoding="utf-8")
    (tmp_path / "good.csv").write_text(good, encoding="utf-8")
    (tmp_path / "latin1.csv").write_bytes(good.replace("Nina Ny", "Nina Nyström").encode("latin-1", "replace"))

    with signed_in(platform, "redaktor@fvm.example") as editor:  # an editor is no admin of every programme
        assert editor.get(f"{platform.url}/console/directory").status_code == 403
    sign_in_in_chromium(page, platform, "admin@budkavle.example", "/console/directory")
    elsewhere = only_budkavle(page, platform)
    assert axe_violations(page) == []

    def upload(name: str) -> None:
        page.get_by_label("CSV-fil").set_input_files(str(tmp_path / name))
        page.get_by_role("button", name="Kontrollera filen").click()
        page.wait_for_load_state()

    upload("bad.csv")
    rejected = page.get_by_role("table", name="Avvisade rader").get_by_role("row").filter(has_text="trasig-1")
    assert rejected.locator("td").all_inner_texts() == [str(len(people) + 3), "trasig-1", "ogiltig e-postadress"]
    assert page.get_by_role("button", name="Verkställ importen").count() == 0
    assert "Inget har ändrats." in page.content() and len(directory_of(platform)) == len(people)
    assert axe_violations(page) == []

    upload("latin1.csv")
    assert "inte UTF-8" in page.get_by_role("alert").inner_text()
    with signed_in(platform, "admin@budkavle.example") as admin:
        csrf = re.search(r'name="csrf" value="([^"]+)"', admin.get(f"{platform.url}/console/directory").text)[1]  # type: ignore[index]
        huge = admin.post(f"{platform.url}/console/directory", data={"csrf": csrf},
                          files={"file": ("stor.csv", b"x" * (21 * 1024 * 1024), "text/csv")})
        assert huge.status_code == 413 and "större än 20 MB" in huge.text
    assert len(directory_of(platform)) == len(people)

    upload("good.csv")
    report = page.get_by_role("table", name="Kontroll av filen")
    assert report.get_by_role("row", name="Personer som läggs till").locator("td").inner_text() == "1"
    assert report.get_by_role("row", name="Personer som tas bort").locator("td").inner_text() == "0"
    assert len(directory_of(platform)) == len(people)  # reported, not applied
    assert axe_violations(page) == []
    page.get_by_role("button", name="Verkställ importen").click()
    assert page.get_by_role("status").inner_text() == f"Katalogen är uppdaterad: den har nu {len(people) + 1} personer."
    assert {r.id for r in directory_of(platform)} == {r.id for r in people} | {"ny-medarbetare-1"}

    page.goto(f"{platform.url}/console/")
    page.get_by_role("link", name=f"Registret för {PROGRAMME}").click()
    published = page.get_by_role("row").filter(has_text=re.compile("Publicerade|Skickade för godkännande")).filter(
        has_text="redaktor@fvm.example")
    assert published.count() >= 2  # the messages the editor published in this module
    assert axe_violations(page) == []
    with page.expect_download() as download:
        page.get_by_role("link", name="Hämta hela registret som CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert exported[0].startswith("seq,at,actor,action") and len(exported) > published.count()
    verified = subprocess.run([sys.executable, "-m", "services.cli", "audit", "verify"], cwd=ROOT, text=True,
                              capture_output=True, timeout=60,
                              env={**os.environ, "BUDKAVLE_DATA_DIR": str(platform.data_dir)})
    assert verified.returncode == 0 and "the audit register is whole" in verified.stdout, verified.stderr
    assert elsewhere == []
