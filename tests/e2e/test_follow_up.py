"""Follow-up end to end on the embedded platform: an event goes out, people answer through the links in
their own mails, and the insights page counts each of them once, per group only. (Answers through a group's
link, which need a signed-in person, are in test_people.)"""

import csv
import email
import email.policy
import io
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.links import FEEDBACK, FEEDBACK_TTL, LinkSigner, feedback_claims
from tests.e2e.conftest import CHROMIUM_ARGS, Platform, axe_violations, sign_in_in_chromium, sink_mails
from tests.waiting import wait_until

#: A tenth of the demo directory: the committees this module's messages go to are the same size at any scale.
STAFF_SCALE = 0.1

LINK = re.compile(r"(http://[^\s]+/feedback/[A-Za-z0-9_.-]+)\?q=understood&a=ja")


@pytest.fixture(scope="module")
def mails(platform: Platform, delivered: dict[str, Any]) -> dict[str, list[email.message.EmailMessage]]:
    """The event's mails in the sink, per target group."""
    by_group: dict[str, list[email.message.EmailMessage]] = {}
    for path in sorted((platform.data_dir / "mail").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["X-Budkavle-Event"] == delivered["event_id"]:
            by_group.setdefault(str(msg["X-Budkavle-Audience"]), []).append(msg)  # type: ignore[arg-type]
    return by_group


def feedback_link(msg: email.message.EmailMessage) -> str:
    """The person's own feedback link (its token), from the mail's text part."""
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = LINK.search(text)
    assert found, text
    return found.group(1)


def answer(url: str, a: str) -> httpx.Response:
    """What a browser does with the link: open its page (which records nothing), then send the page's form."""
    opened = httpx.get(f"{url}?q=understood&a={a}", timeout=10)
    if opened.status_code != 200:
        return opened
    assert 'id="skicka"' in opened.text
    return httpx.post(url, data={"q": "understood", "a": a}, timeout=10)


def figures(platform: Platform, event_id: str) -> dict[str, dict[str, str]]:
    """The event's rows of the CSV export, per group (read with the demo token, an admin's)."""
    text = httpx.get(f"{platform.url}/insights/fvm/export.csv", headers={"Authorization": f"Bearer {platform.token}"},
                     timeout=10).content.decode("utf-8-sig")
    return {r["målgrupp_id"]: r for r in csv.DictReader(io.StringIO(text)) if r["händelse_id"] == event_id}


@pytest.fixture(scope="module")
def group(mails: dict[str, list[email.message.EmailMessage]]) -> str:
    big = [g for g, ms in mails.items() if len(ms) >= 7]
    assert big, {g: len(ms) for g, ms in mails.items()}
    return big[0]


def test_answers_count_once_per_person_and_a_group_under_five_shows_too_few(
        platform: Platform, delivered: dict[str, Any], mails: dict[str, list[email.message.EmailMessage]],
        group: str) -> None:
    event_id = delivered["event_id"]
    links = [feedback_link(m) for m in mails[group][:5]]
    assert len(set(links)) == 5  # each person's own
    for url in links[:4]:
        page = answer(url, "ja")
        assert page.status_code == 200 and "Tack för ditt svar" in page.text

    wait_until(lambda: _answers_stored(platform, group, "p:") == 4, 30, "four answers to be counted")
    row = figures(platform, event_id)[group]
    assert (row["svar"], row["understood_ja"], row["understood_nej"]) == ("för få svar", "", "")
    assert answer(links[4], "nej").status_code == 200
    wait_until(lambda: figures(platform, event_id)[group]["understood_nej"] == "1", 30, "the fifth answer")
    row = figures(platform, event_id)[group]
    assert (row["understood_ja"], row["understood_nej"]) == ("4", "1")
    assert row["email_levererade"] == row["email_avsedda"] == str(len(mails[group]))

    # The fifth person changes their mind, then clicks twenty times more: counted once, as the latest.
    for _ in range(21):
        assert answer(links[4], "ja").status_code == 200
    wait_until(lambda: figures(platform, event_id)[group]["understood_ja"] == "5", 30, "the changed answer")
    row = figures(platform, event_id)[group]
    assert (row["understood_ja"], row["understood_nej"]) == ("5", "0")


def test_untrusted_links_and_answers_are_refused_and_change_nothing(
        platform: Platform, delivered: dict[str, Any], mails: dict[str, list[email.message.EmailMessage]],
        group: str) -> None:
    url = feedback_link(mails[group][5])
    token = url.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    forged = f"{url.rsplit('/', 1)[0]}/{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{mac}"
    assert answer(forged, "ja").status_code == 400
    assert answer(url, "kanske").status_code == 422
    assert httpx.get(f"{url}?q=trivsel&a=ja", timeout=10).status_code == 422
    signer = LinkSigner((platform.data_dir / "link-key").read_text().strip().encode())
    foreign = signer.sign(FEEDBACK, feedback_claims("okand", delivered["event_id"], group, "p1"), FEEDBACK_TTL)
    assert httpx.get(f"{platform.url}/feedback/{foreign}?q=understood&a=ja", timeout=10).status_code == 404
    read = url.replace("/feedback/", "/r/")
    assert httpx.get(f"{read}?to=https://example.com/", timeout=10).status_code == 400
    assert httpx.post(read, data={"to": "https://example.com/"}, timeout=10).status_code == 400
    assert httpx.post(read, data={"to": "more"}, timeout=10).status_code == 404  # the event has no page elsewhere
    row = figures(platform, delivered["event_id"])[group]
    assert row["understood_nej"] in ("0", "1") and row["lästa"] == "0"


def test_read_more_redirects_only_to_the_events_own_item_and_counts_a_person_once(
        platform: Platform, delivered: dict[str, Any], mails: dict[str, list[email.message.EmailMessage]],
        group: str) -> None:
    read = feedback_link(mails[group][0]).replace("/feedback/", "/r/")
    for _ in range(5):
        assert httpx.get(read, timeout=10).status_code == 200  # the page, whose form is what counts
        response = httpx.post(read, timeout=10, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"{platform.url}/intranet/items/{delivered['event_id']}"
    wait_until(lambda: figures(platform, delivered["event_id"])[group]["lästa"] == "1", 30, "one read")


def _answers_stored(platform: Platform, group: str, kind: str) -> int:
    """Answers kept for the group, from people's own mails (p:) or from signed-in people (s:)."""
    with sqlite3.connect(platform.data_dir / "insights.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM insights_answers WHERE audience_id = ? AND respondent LIKE ?",
                              (group, f"{kind}%")).fetchone()[0])


def test_the_insights_pages_chart_the_same_numbers_as_their_tables_without_wcag_violations(
        platform: Platform, delivered: dict[str, Any], mails: dict[str, list[email.message.EmailMessage]],
        group: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    pages = {"programme": "/insights/fvm/", "event": f"/insights/fvm/events/{delivered['event_id']}",
             "group over time": f"/insights/fvm/groups/{group}", "start": "/insights/",
             "thanks": f"{feedback_link(mails[group][6])}?q=involved&a=ja",
             "refused link": "/feedback/forged.link?q=understood&a=ja"}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            sign_in_in_chromium(page, platform, "lasare@fvm.example", "/insights/")
            for name, path in pages.items():
                page.goto(path if path.startswith("http") else f"{platform.url}{path}")
                if name == "thanks":  # the link's page sends its form itself
                    page.get_by_role("heading", name="Tack för ditt svar").wait_for()
                assert axe_violations(page) == [], name
            row = figures(platform, delivered["event_id"])[group]
            yes, no = int(row["understood_ja"]), int(row["understood_nej"])
            page.goto(f"{platform.url}/insights/fvm/events/{delivered['event_id']}")
            chart = page.locator("svg.chart")
            assert chart.count() == 1 and chart.bounding_box()["height"] > 100  # type: ignore[index]
            labels = page.locator("svg.chart text").all_text_contents()
            # The group's bar says what its table row says, and what the export says.
            assert f"Förstod: {round(100 * yes / (yes + no))} %" in labels, labels
            assert "Förstod: för få svar" in labels  # the other committees answered too little
            cells = page.get_by_role("row").filter(has_text=f"ja {yes}, nej {no}").all_text_contents()
            assert len(cells) == 1, cells
            page.screenshot(path=str(tmp_path / "insights-event.png"), full_page=True)
            assert (tmp_path / "insights-event.png").stat().st_size > 10_000
        finally:
            browser.close()



ACK_LINK = re.compile(r"Jag har tagit del av informationen: (http://[^\s]+/ack/[A-Za-z0-9_.-]+)")


def test_must_know_news_is_acknowledged_through_a_persons_own_link_on_pages_without_wcag_violations(
        platform: Platform) -> None:
    """The acknowledgement and thank-you pages in Chromium (axe-core), the button alone recording it, and the
    insights page showing the group's share."""
    from datetime import UTC, datetime, timedelta

    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import steering_decision

    auth = {"Authorization": f"Bearer {platform.token}"}
    body = {**steering_decision(), "audiences": ["programstyrgrupp"],
            "acknowledge_by": (datetime.now(UTC) + timedelta(days=3)).isoformat()}
    response = httpx.post(f"{platform.url}/v1/events", json=body, headers=auth, timeout=30)
    assert response.status_code == 202, response.text
    event_id = response.json()["event_id"]

    def acknowledgement_links() -> list[str]:
        return [link for msg in sink_mails(platform.data_dir, event_id)
                for link in ACK_LINK.findall(msg.get_body(("plain",)).get_content())]  # type: ignore[union-attr]

    wait_until(lambda: len(acknowledgement_links()) >= 5, 60, "the mails with their acknowledgement links")
    links = acknowledgement_links()
    assert len(set(links)) == len(links)  # each person's own
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(links[0])
            page.get_by_role("heading", name="Bekräfta att du tagit del av informationen").wait_for()
            assert axe_violations(page) == [], "acknowledgement page"
            assert _acknowledged(platform, event_id) == 0  # opening the page records nothing
            page.get_by_role("button", name="Jag har tagit del av informationen").click()
            page.get_by_role("heading", name="Tack för din bekräftelse").wait_for()
            assert axe_violations(page) == [], "thank-you page"
            page.goto(f"{platform.url}/ack/forged.link")
            assert axe_violations(page) == [], "refused link"
            for url in links[1:5]:
                page.goto(url)
                page.get_by_role("button", name="Jag har tagit del av informationen").click()
                page.get_by_role("heading", name="Tack för din bekräftelse").wait_for()
            wait_until(lambda: _acknowledged(platform, event_id) == 5, 30, "five acknowledgements to be counted")
            sign_in_in_chromium(page, platform, "lasare@fvm.example", "/insights/")
            page.goto(f"{platform.url}/insights/fvm/events/{event_id}")
            table = page.get_by_role("table", name="Bekräftat att de tagit del")
            row = table.get_by_role("row").filter(has_text="Programstyrgrupp").inner_text()
            members = len(links)
            assert f"{100 * 5 / members:.1f} %" in row, row
            assert axe_violations(page) == [], "insights with acknowledgements"
        finally:
            browser.close()


def _acknowledged(platform: Platform, event_id: str) -> int:
    with sqlite3.connect(platform.data_dir / "insights.db") as db:
        return int(db.execute("SELECT count(*) FROM insights_acknowledgements WHERE event_id = ?",
                              (event_id,)).fetchone()[0])
