"""The embedded platform started as a user starts it (`budkavle up`), one must-know steering decision
posted over HTTP, and everything that should leave checked where it lands."""

import csv
import email
import email.policy
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from services.embedded.broker import free_port
from tests.conftest import ROOT
from tests.e2e.conftest import (
    CHROMIUM_ARGS,
    COMMITTEES,
    Platform,
    axe_violations,
    is_ready,
    sign_in_in_chromium,
    signed_in,
    sink_mails,
)
from tests.waiting import wait_until

#: A tenth of the demo directory: the committees this module's messages go to are the same size at any scale.
STAFF_SCALE = 0.1


def targeted_addresses(data_dir: Path) -> set[str]:
    """The committee members, read straight from the directory the platform created."""
    with sqlite3.connect(data_dir / "tailor.db") as db:
        rows = db.execute(f"SELECT email FROM tailor_recipients WHERE role IN ({','.join('?' * len(COMMITTEES))})",
                          COMMITTEES).fetchall()
    return {r[0] for r in rows}


def mail_recipients(data_dir: Path) -> list[str]:
    out = []
    for path in (data_dir / "mail").glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out.append(msg["To"].addresses[0].addr_spec)
    return out


def test_emails_reach_exactly_the_targeted_recipients(platform: Platform, delivered: dict[str, Any]) -> None:
    expected = targeted_addresses(platform.data_dir)
    assert len(expected) == 35
    got = mail_recipients(platform.data_dir)
    assert sorted(got) == sorted(expected)  # each once, nobody else


def test_a_card_lands_in_the_teams_sink_for_each_targeted_group(platform: Platform, delivered: dict[str, Any]) -> None:
    folders = {p.name: sorted(p.glob("*.json")) for p in (platform.data_dir / "teams").iterdir()}
    # politisk-styrgrupp has no Teams channel in the FVM configuration
    assert {k: len(v) for k, v in folders.items()} == {"programstyrgrupp": 1, "strategisk-styrgrupp": 1}
    body = json.loads(folders["programstyrgrupp"][0].read_text())
    assert body["attachments"][0]["content"]["body"][1]["text"].endswith("Ny tidplan för införandet av Millennium")


def test_the_internal_item_is_on_the_intranet_and_in_the_atom_feed_for_people_of_the_programme_only(
        platform: Platform, delivered: dict[str, Any]) -> None:
    title, entry = "Ny tidplan för införandet av Millennium", f"urn:uuid:{delivered['event_id']}"
    anonymous = httpx.get(f"{platform.url}/intranet/")
    assert anonymous.status_code == 200 and title not in anonymous.text  # the decision is internal
    assert entry not in [e.id for e in feedparser.parse(httpx.get(f"{platform.url}/intranet/feed.atom").content).entries]
    with signed_in(platform, "medarbetare@fvm.example") as member:
        assert title in member.get(f"{platform.url}/intranet/").text
        feed = feedparser.parse(member.get(f"{platform.url}/intranet/feed.atom").content)
    assert not feed.bozo
    assert feed.entries[0].id == entry
    with signed_in(platform, "redaktor@fvis.example") as other:
        assert title not in other.get(f"{platform.url}/intranet/").text
        assert other.get(f"{platform.url}/intranet/items/{delivered['event_id']}").status_code == 403


def counts(targeted: int, sent: int) -> dict[str, Any]:
    return {"targeted": targeted, "sent": sent, "failed": 0, "deferred": 0, "next_attempt_at": None}


def test_status_shows_counts_per_group_and_channel(delivered: dict[str, Any]) -> None:
    status = delivered["status"]
    assert status["groups"]["politisk-styrgrupp"] == {"email": counts(9, 9)}
    assert status["groups"]["programstyrgrupp"]["teams"] == counts(1, 1)
    assert status["totals"]["email"] == counts(35, 35)
    assert status["totals"]["intranet"] == counts(1, 1)


def test_cli_publish_finds_the_running_platform(platform: Platform, delivered: dict[str, Any], tmp_path: Path) -> None:
    event_file = tmp_path / "status.yaml"
    event_file.write_text("type: status.update\nprogram: fvm\npublisher: cli\nimportance: awareness\n"
                          "occurred_at: 2026-12-01T09:00:00+01:00\n"
                          "payload: {title: Läget i december, summary: Allt går enligt plan.,\n"
                          "          next_milestones: [{title: Utbildning, date: 2027-01-15}]}\n")
    env = {**os.environ, "BUDKAVLE_DATA_DIR": str(platform.data_dir)}
    result = subprocess.run([sys.executable, "-m", "services.cli", "publish", str(event_file)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status_url"].startswith(platform.url)


def test_a_reader_follows_the_intranet_pages_in_headless_chromium_without_errors(
        platform: Platform, delivered: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            sign_in_in_chromium(page, platform, "medarbetare@fvm.example")  # the decision is internal
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{platform.url}/intranet/")
            page.get_by_role("link", name="Ny tidplan för införandet av Millennium").click()
            page.wait_for_url(f"**/intranet/items/{delivered['event_id']}")
            assert page.locator("h1").inner_text() == "Ny tidplan för införandet av Millennium"
            assert "FVM (Framtidens vårdinformationsmiljö)" in page.locator("article").inner_text()
            assert page.locator("dl.facts").inner_text().count("Regionstyrelsen") == 1
            page.get_by_role("link", name="Läget just nu").click()
            assert page.get_by_role("heading", name="Senaste besluten").is_visible()
            page.goto(f"{platform.url}/mail/")
            assert page.locator("tbody tr").count() >= 35
            assert errors == []
        finally:
            browser.close()


def test_the_preference_and_status_pages_have_no_wcag_2_1_aa_violations_in_chromium(
        platform: Platform, delivered: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from services.common.links import LinkSigner

    signer = LinkSigner((platform.data_dir / "link-key").read_text().strip().encode())
    token = signer.sign("prefs", {"program": "fvm", "person": "a11y", "audience": "programstyrgrupp"},
                        timedelta(days=1))
    pages = {"preferences": f"/preferences/{token}", "unsubscribe": f"/unsubscribe/{token}",
             "refused link": "/preferences/forged.link", "status": "/intranet/status?program=fvm",
             "status, every programme": "/intranet/status",
             "item, with its questions": f"/intranet/items/{delivered['event_id']}"}
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            sign_in_in_chromium(page, platform, "medarbetare@fvm.example")  # the item is internal
            for name, path in pages.items():
                page.goto(f"{platform.url}{path}")
                assert axe_violations(page) == [], name
            page.goto(f"{platform.url}/preferences/{token}")
            page.get_by_role("radio", name="Ingen sammanfattning").check()
            page.get_by_role("button", name="Spara mina val").click()
            assert page.get_by_role("heading", name="Dina val är sparade").is_visible()
            page.screenshot(path=str(tmp_path / "preferences-saved.png"))
        finally:
            browser.close()


def test_cli_lists_a_dead_letter_and_sends_it_again(platform: Platform, delivered: dict[str, Any]) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{platform.kafka_port}")
        await producer.start()
        try:
            await producer.send_and_wait("events.status.update.v1", b"\xffnot an event", key=b"garbage-1")
        finally:
            await producer.stop()

    asyncio.run(garbage())
    env = {**os.environ, "BUDKAVLE_DATA_DIR": str(platform.data_dir)}

    def cli(*args: str) -> Any:
        result = subprocess.run([sys.executable, "-m", "services.cli", "dead-letters", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def listed() -> list[dict[str, Any]]:
        return [d for d in cli("list")["dead_letters"] if d["consumer"] == "tailor"]

    wait_until(lambda: bool(listed()), 60, "the dead letter to be listed")
    [letter] = listed()
    assert letter["topic"] == "events.status.update.v1" and letter["program"] is None
    assert cli("redrive", str(letter["id"]))["redrives"] == 1
    wait_until(lambda: len(listed()) == 2, 60, "the redriven garbage to come back as a dead letter")


def test_cli_digest_run_sends_a_groups_digest_once_and_refuses_an_unknown_group(
        platform: Platform, delivered: dict[str, Any]) -> None:
    env = {**os.environ, "BUDKAVLE_DATA_DIR": str(platform.data_dir)}

    def digest_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "digest", "run", "--program", "fvm", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    def digests() -> list[email.message.EmailMessage]:
        found = []
        for path in (platform.data_dir / "mail").glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if "Lägessummering" in str(message["Subject"]):
                found.append(message)  # type: ignore[arg-type]
        return found

    def digests_sent() -> int:
        return (platform.data_dir / "up.log").read_text(errors="replace").count('"msg": "digest sent"')

    first = digest_run("--audience", "politisk-styrgrupp", "--period", "2026-11")
    assert first.returncode == 0, first.stderr
    assert "politisk-styrgrupp 2026-11" in first.stdout
    wait_until(lambda: len(digests()) >= 9, 60, "the committee's digest")  # nine members in the demo directory
    got = digests()
    assert {str(m["Subject"]) for m in got} == {"FVM (Framtidens vårdinformationsmiljö): Lägessummering november 2026"}
    body = got[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Tidplan" in body and "Västra området (västra): hösten 2026" in body
    again = digest_run("--audience", "politisk-styrgrupp", "--period", "2026-11")
    assert again.returncode == 0
    wait_until(lambda: digests_sent() >= 2, 60, "the tailor to build the same digest again")
    wait_until(lambda: (platform.data_dir / "up.log").read_text(errors="replace").count(
        "redelivered deliveries found in ledger") >= 1, 60, "the email service to find it in its ledger")
    unknown = digest_run("--audience", "finns-inte")
    assert unknown.returncode == 2 and "no target group 'finns-inte'" in unknown.stderr
    bad = digest_run("--period", "2026-13")
    assert bad.returncode == 2 and "no such month" in bad.stderr
    assert len(digests()) == len(got)  # the same period again sent nothing twice


def test_a_digest_reader_follows_the_preference_link_unsubscribes_in_one_click_and_gets_no_next_digest(
        platform: Platform, delivered: dict[str, Any]) -> None:
    env = {**os.environ, "BUDKAVLE_DATA_DIR": str(platform.data_dir)}

    def digest_run(period: str) -> None:
        result = subprocess.run([sys.executable, "-m", "services.cli", "digest", "run", "--program", "fvm",
                                 "--audience", "programstyrgrupp", "--period", period],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    def digests(period: str) -> dict[str, email.message.EmailMessage]:
        found = {}
        for path in (platform.data_dir / "mail").glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if period in str(message["Subject"]):
                found[message["To"].addresses[0].addr_spec] = message  # type: ignore[assignment]
        return found

    digest_run("2026-W40")
    wait_until(lambda: len(digests("vecka 40")) >= 14, 60, "the group's weekly digest")  # 14 members
    first = digests("vecka 40")
    reader, message = sorted(first.items())[0]
    [unsubscribe] = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [page_url] = re.findall(r"https?://\S+/preferences/\S+", text)
    page = httpx.get(page_url, timeout=10)
    assert page.status_code == 200 and "Det du måste känna till får du alltid." in page.text
    done = httpx.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert done.status_code == 200
    forged = httpx.get(page_url[:-3] + "abc", timeout=10)
    assert forged.status_code == 400 and "Länken fungerar inte" in forged.text

    def logged(words: str) -> int:
        return (platform.data_dir / "up.log").read_text(errors="replace").count(words)

    wait_until(lambda: logged('"msg": "digest sent"') >= 1 and _tailor_knows(platform.data_dir), 60,
               "the tailor to hear of the choice")
    digest_run("2026-W41")
    wait_until(lambda: len(digests("vecka 41")) >= len(first) - 1, 60, "the next digest")
    assert reader not in digests("vecka 41") and len(digests("vecka 41")) == len(first) - 1


def _tailor_knows(data_dir: Path) -> bool:
    with sqlite3.connect(data_dir / "tailor.db") as db:
        return bool(db.execute("SELECT count(*) FROM tailor_preferences WHERE digest = 'none'").fetchone()[0])


def test_a_newsletter_is_previewed_over_http_for_one_group_and_channel_without_being_sent(
        platform: Platform, delivered: dict[str, Any]) -> None:
    letter = {"type": "newsletter.issue", "program": "fvm", "publisher": "Redaktionen", "importance": "awareness",
              "sensitivity": "internal", "payload": {"title": "Nyhetsbrev december", "intro": "Det här är nytt.",
                                                     "sections": [{"heading": "Utbildning", "body": "Snart."}]}}
    before = len(list((platform.data_dir / "mail").glob("*.eml")))
    response = httpx.post(f"{platform.url}/v1/previews", params={"audience": "programstyrgrupp", "channel": "email"},
                          json=letter, headers={"Authorization": f"Bearer {platform.token}"}, timeout=30)
    assert response.status_code == 200, response.text
    text = response.json()["parts"][".txt"]
    assert text.startswith("Ämne: ") and "Nyhetsbrev december" in text
    assert "/preferences/din-personliga-lank" in text  # where each person's own link goes
    assert len(list((platform.data_dir / "mail").glob("*.eml"))) == before


def mails_of(data_dir: Path, event_id: str) -> list[str]:
    """Whom the sink's mails of one event went to."""
    return [msg["To"].addresses[0].addr_spec for msg in sink_mails(data_dir, event_id)]


def ledger_recipients(data_dir: Path, event_id: str) -> list[str]:
    """Whom the email ledger says an event was sent to, by address."""
    with sqlite3.connect(data_dir / "email.db") as db:
        ids = [r[0] for r in db.execute("SELECT recipient_id FROM email_ledger WHERE event_id = ? AND status = 'sent'",
                                        (event_id,))]
    with sqlite3.connect(data_dir / "tailor.db") as db:
        addresses = dict(db.execute("SELECT id, email FROM tailor_recipients").fetchall())
    return [addresses[i] for i in ids]


def amend(platform: Platform, kind: str, corrects: str, **payload: Any) -> httpx.Response:
    body = {"type": kind, "program": "fvm", "publisher": "FVM programkontor", "importance": "must_know",
            "payload": {"corrects": corrects, "title": "Ny tidplan för införandet av Millennium",
                        "reason": "Det första utskicket hade fel datum.", **payload}}
    return httpx.post(f"{platform.url}/v1/events", json=body, headers={"Authorization": f"Bearer {platform.token}"},
                      timeout=30)


def delivered_status(platform: Platform, event_id: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {platform.token}"}
    url = f"{platform.url}/v1/events/{event_id}"
    wait_until(lambda: httpx.get(url, headers=auth, timeout=10).json()["status"] == "delivered", 120,
               f"{event_id} to be delivered")
    return dict(httpx.get(url, headers=auth, timeout=10).json())


def test_a_correction_reaches_exactly_whom_the_original_reached_and_its_item_and_feed_entry_show_it(
        platform: Platform, delivered: dict[str, Any]) -> None:
    """Then a correction of the correction; then a retraction marks the item, and nothing of it can be amended
    again. What the sink got is compared with the email ledger: no one more, no one fewer."""
    original = delivered["event_id"]

    def cards() -> dict[str, int]:
        return {p.name: len(list(p.glob("*.json"))) for p in (platform.data_dir / "teams").iterdir()}

    cards_before = cards()
    first = amend(platform, "correction", original, what_changed="Södra området inför hösten 2024, inte våren.",
                  corrected={"consequences": "Södra området inför hösten 2024."})
    assert first.status_code == 202, first.text
    correction = delivered_status(platform, first.json()["event_id"])
    reached = ledger_recipients(platform.data_dir, original)
    assert len(reached) == 35
    assert sorted(mails_of(platform.data_dir, correction["event_id"])) == sorted(reached)
    assert correction["amends"] == original and correction["totals"]["email"]["sent"] == 35
    new_cards = {name: n - cards_before.get(name, 0) for name, n in cards().items()}
    assert {name: n for name, n in new_cards.items() if n} == {"programstyrgrupp": 1, "strategisk-styrgrupp": 1}

    item_url = f"{platform.url}/intranet/items/{original}"
    with signed_in(platform, "medarbetare@fvm.example") as member:
        page = member.get(item_url).text
        assert "Rättelse" in page and "Södra området inför hösten 2024, inte våren." in page
        assert "Tidigare versioner" in page and "Södra området inför hösten 2024." in page
        [entry] = [e for e in feedparser.parse(member.get(f"{platform.url}/intranet/feed.atom").content).entries
                   if e.id == f"urn:uuid:{original}"]
    assert entry.updated_parsed > entry.published_parsed

    second = amend(platform, "correction", correction["event_id"], what_changed="Rubriken är rättad.",
                   corrected={"title": "Ny tidplan för införandet av Millennium (rättad)"})
    assert second.status_code == 202, second.text
    again = delivered_status(platform, second.json()["event_id"])
    assert sorted(mails_of(platform.data_dir, again["event_id"])) == sorted(reached)
    status = httpx.get(f"{platform.url}/v1/events/{original}", headers={"Authorization": f"Bearer {platform.token}"},
                       timeout=10).json()
    assert [a["type"] for a in status["amendments"]] == ["correction", "correction"]
    assert status["reads_now"]["payload"]["title"].endswith("(rättad)")
    assert status["reads_now"]["payload"]["consequences"] == "Södra området inför hösten 2024."

    withdrawn = amend(platform, "retraction", original, reason="Beslutet var inte justerat.")
    assert withdrawn.status_code == 202, withdrawn.text
    retraction = delivered_status(platform, withdrawn.json()["event_id"])
    assert sorted(mails_of(platform.data_dir, retraction["event_id"])) == sorted(reached)
    with signed_in(platform, "medarbetare@fvm.example") as member:
        assert "Återkallad" in member.get(item_url).text
        titles = [e.title for e in feedparser.parse(member.get(f"{platform.url}/intranet/feed.atom").content).entries]
    assert "Återkallad: Ny tidplan för införandet av Millennium (rättad)" in titles

    for corrects, program, words in ((original, "fvm", "was retracted"),
                                     (correction["event_id"], "fvm", "was retracted"),
                                     ("00000000-0000-4000-8000-000000000000", "fvm", "no event"),
                                     (original, "fvis", "no event")):
        body = {"type": "correction", "program": program, "publisher": "x", "importance": "awareness",
                "payload": {"corrects": corrects, "title": "T", "what_changed": "W", "reason": "R",
                            "corrected": {"title": "Ny"}}}
        refused = httpx.post(f"{platform.url}/v1/events", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {platform.token}"})
        assert refused.status_code == 422 and words in refused.text, refused.text
        assert refused.json()["errors"][0]["path"] == "payload.corrects"


def test_a_correction_of_an_event_still_being_delivered_follows_it_to_each_person(platform: Platform) -> None:
    """A must-know message to the 149 elected representatives, corrected the moment it is accepted: each of them
    gets the correction after the original, and nobody else gets it."""
    auth = {"Authorization": f"Bearer {platform.token}"}
    original = httpx.post(f"{platform.url}/v1/events", headers=auth, timeout=30, json={
        "type": "status.update", "program": "fvm", "publisher": "FVM programkontor", "importance": "must_know",
        "audiences": ["fortroendevalda"], "payload": {"title": "Utbildning för förtroendevalda",
                                                    "summary": "Anmälan öppnar 1 mars."}})
    assert original.status_code == 202, original.text
    original_id = original.json()["event_id"]
    correction = amend(platform, "correction", original_id, title="Utbildning för förtroendevalda",
                       what_changed="Anmälan öppnar 1 april.", corrected={"summary": "Anmälan öppnar 1 april."})
    assert correction.status_code == 202, correction.text
    assert httpx.get(f"{platform.url}/v1/events/{original_id}", headers=auth).json()["status"] != "delivered"
    delivered_status(platform, original_id)
    done = delivered_status(platform, correction.json()["event_id"])
    reached = ledger_recipients(platform.data_dir, original_id)
    assert len(reached) == 149 and done["totals"]["email"] == {
        "targeted": 149, "sent": 149, "failed": 0, "deferred": 0, "next_attempt_at": None}
    assert sorted(mails_of(platform.data_dir, done["event_id"])) == sorted(reached)


def test_ctrl_c_stops_everything_broker_included(platform: Platform, delivered: dict[str, Any]) -> None:
    platform.process.send_signal(signal.SIGINT)
    assert platform.process.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{platform.url}/healthz", timeout=2)
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", platform.kafka_port)) != 0  # the broker process is gone
    assert not (platform.data_dir / "runtime.json").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_no_broker_outlives_the_platform(tmp_path: Path, sig: signal.Signals) -> None:
    """What a service manager does (SIGTERM), and the worst case (SIGKILL): no broker is left behind."""
    import socket

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL")}
    env.update(BUDKAVLE_DATA_DIR=str(tmp_path), BUDKAVLE_HTTP_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--staff-scale", "0.01"], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (tmp_path / "runtime.json").exists() or process.poll() is not None, 60, "runtime.json")
        kafka = json.loads((tmp_path / "runtime.json").read_text())["kafka_bootstrap_servers"]
        kafka_port = int(kafka.rsplit(":", 1)[1])
        wait_until(lambda: is_ready(f"http://127.0.0.1:{port}"), 60, "readiness")
        process.send_signal(sig)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()

    def broker_gone() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", kafka_port)) != 0
    wait_until(broker_gone, 15, f"the broker to stop after {sig.name}")
    if sig is signal.SIGTERM:
        assert process.returncode == 0
        assert not (tmp_path / "runtime.json").exists()


def test_the_first_start_tells_the_seed_history_through_its_own_api_and_a_restart_does_not_tell_it_again(
        tmp_path: Path) -> None:
    from services.embedded.history import HISTORY

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL", "BUDKAVLE_API_TOKENS",
                        "BUDKAVLE_DEMO_HISTORY")}
    env.update(BUDKAVLE_DATA_DIR=str(tmp_path), BUDKAVLE_HTTP_PORT=str(port))

    def feed_titles() -> list[str]:  # the history is internal news of both programmes: for an admin of both
        with signed_in(url, "admin@budkavle.example") as member:
            return [e.title for e in feedparser.parse(member.get(f"{url}/intranet/feed.atom").content).entries]

    for start in ("first", "second"):
        log = open(tmp_path / f"{start}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--staff-scale", "0.02"], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda p=process: is_ready(url) or p.poll() is not None, 120,  # type: ignore[misc]
                       "the platform to be ready")
            wait_until(lambda: len(feed_titles()) >= len(HISTORY), 120, "the history on the intranet")
            titles = feed_titles()
            with signed_in(url, "medarbetare@fvm.example") as member:
                status = member.get(f"{url}/intranet/status?program=fvm").text
            wait_until(lambda: (tmp_path / "demo-history-told").exists(), 120, "the demo readers to answer")
            with signed_in(url, "lasare@fvm.example") as reader:
                export = reader.get(f"{url}/insights/fvm/export.csv").content.decode("utf-8-sig")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
            log.close()
        assert len(titles) == len(HISTORY)  # told once, however often the platform starts
        assert "Summering FVM maj 2020" in titles and "Ny tidplan för Framtidens vårdinformationsmiljö" in titles
        assert "Summering FVM (Framtidens vårdinformationsmiljö) maj 2020" in status  # rule 5 on the page
        assert "Programmets fas: Införande." in status
        # The demo's readers answered through their own links: some groups have enough answers to show.
        shown = [r for r in csv.DictReader(io.StringIO(export)) if r["understood_ja"]]
        assert shown and all(int(r["understood_ja"]) + int(r["understood_nej"]) >= 5 for r in shown)
    assert list((tmp_path / "mail").glob("*.eml")), "the committees' decisions reached the mail sink"
