"""People on the embedded platform, in headless Chromium: each demo person signs in through the local
provider's own form and sees exactly what their role allows; signing out ends the session; a group's link
counts a signed-in person once and a stranger never; a mail whose every link is fetched answers nothing; the
sign-in's own pages pass axe-core."""

import email
import email.policy
import re
import sqlite3
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Platform, axe_violations, sign_in_in_chromium, steering_decision
from tests.waiting import wait_until

#: A tenth of the demo directory: the committees this module's messages go to are the same size at any scale.
STAFF_SCALE = 0.1

TITLE = "Ny tidplan för införandet av Millennium"


def stored(platform: Platform, table: str, group: str, kind: str) -> int:
    """Rows the insights service keeps for the group, from people's own mails (p:) or signed-in people (s:)."""
    with sqlite3.connect(platform.data_dir / "insights.db") as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} WHERE audience_id = ? AND respondent LIKE ?",
                              (group, f"{kind}%")).fetchone()[0])


#: What each demo person may open: the programmes' insights, and FVM's internal item.
SEES = {
    "lasare@fvm.example": ({"fvm"}, True),
    "redaktor@fvm.example": ({"fvm"}, True),
    "godkannare@fvm.example": ({"fvm"}, True),
    "redaktor@fvis.example": ({"fvis"}, False),
    "godkannare@fvis.example": ({"fvis"}, False),
    "admin@budkavle.example": ({"fvm", "fvis"}, True),
    "medarbetare@fvm.example": (set(), True),
    "extern@example.org": (set(), False),
}


@pytest.mark.parametrize("sub", sorted(SEES))
def test_each_demo_person_signs_in_through_the_providers_form_and_sees_what_their_role_allows(
        platform: Platform, delivered: dict[str, Any], browser: Any, sub: str) -> None:
    programmes, reads_item = SEES[sub]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{platform.url}/insights/")
        assert not page.url.startswith(platform.url)  # at the provider, asked who one is
        page.get_by_placeholder("sub").fill(sub)
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{platform.url}/insights/")
        if not programmes:
            assert page.get_by_role("heading", name="Du har inte behörighet till den här sidan").is_visible()
        for code in ("fvm", "fvis"):
            response = page.goto(f"{platform.url}/insights/{code}/")
            assert response is not None and response.status == (200 if code in programmes else 403), (sub, code)
            if code not in programmes:  # a clear Swedish page, never another programme's figures
                assert page.get_by_role("heading", name="Du har inte behörighet till den här sidan").is_visible()
                assert "Uppföljning av de senaste" not in page.content()
        item = page.goto(f"{platform.url}/intranet/items/{delivered['event_id']}")
        assert item is not None and item.status == (200 if reads_item else 403), sub
        page.goto(f"{platform.url}/intranet/")
        assert (TITLE in page.content()) == reads_item, sub

        [kept] = [c for c in context.cookies() if "session" in c["name"]]  # as someone might copy it
        page.goto(f"{platform.url}/auth/logout")
        page.get_by_role("button", name="Logga ut").click()
        assert page.get_by_role("heading", name="Du är utloggad").is_visible()
        assert not [c for c in context.cookies() if "session" in c["name"]]
        copied = {kept["name"]: kept["value"]}
        with httpx.Client(cookies=copied, timeout=10) as copy:  # the copy opens nothing either, anywhere
            assert copy.get(f"{platform.url}/insights/").status_code == 303
            item = f"{platform.url}/intranet/items/{delivered['event_id']}"  # the intranet hears it on the bus
            wait_until(lambda: copy.get(item).status_code == 303, 30, "the intranet to end the session too")
        page.goto(f"{platform.url}/insights/")
        assert not page.url.startswith(platform.url)  # asked to sign in again: the session is gone
        page.goto(f"{platform.url}/intranet/")
        assert TITLE not in page.content()
    finally:
        context.close()


def test_a_group_link_counts_a_signed_in_person_once_and_someone_not_signed_in_never(
        platform: Platform, delivered: dict[str, Any], browser: Any) -> None:
    card = next((platform.data_dir / "teams" / "programstyrgrupp").glob("*.json")).read_text()
    [url] = re.findall(r'"(http://[^"]+/feedback/[^"?]+\?q=involved&a=delvis)"', card)
    before = stored(platform, "insights_answers", "programstyrgrupp", "s:")
    for _ in range(3):  # a stranger's client: sent to sign in, whether it opens the link or sends its form
        opened = httpx.get(url, timeout=10)
        sent = httpx.post(url.split("?")[0], data={"q": "involved", "a": "delvis"}, timeout=10)
        assert opened.status_code == sent.status_code == 303 and "/auth/login" in opened.headers["location"]
    for sub in ("medarbetare@fvm.example", "redaktor@fvm.example"):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url)  # not signed in: the link leads to the sign-in, and back
            page.get_by_placeholder("sub").fill(sub)
            page.get_by_role("button", name="Authorize").click()
            page.get_by_role("heading", name="Tack för ditt svar").wait_for()
            page.goto(url)  # the same person again
            page.get_by_role("heading", name="Tack för ditt svar").wait_for()
        finally:
            context.close()
    wait_until(lambda: stored(platform, "insights_answers", "programstyrgrupp", "s:") == before + 2, 30,
               "each signed-in person's answer, once")


def test_a_mail_whose_every_link_is_fetched_by_a_plain_get_answers_nothing(
        platform: Platform, delivered: dict[str, Any]) -> None:
    """What a mail security gateway does with every mail before its reader sees it."""
    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in sorted((platform.data_dir / "mail").glob("*.eml"))]
    ours = [m for m in mails if m["X-Budkavle-Event"] == delivered["event_id"]
            and m["X-Budkavle-Audience"] == "politisk-styrgrupp"][-3:]
    assert len(ours) == 3
    before = [stored(platform, t, "politisk-styrgrupp", "p:") for t in ("insights_answers", "insights_reads")]
    fetched = 0
    for msg in ours:
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        links = set(re.findall(r"https?://[^\s\"<>]+", text + html.replace("&amp;", "&")))
        assert sum("/feedback/" in link for link in links) == 5 and any("/r/" in link for link in links)
        for link in links:
            if link.startswith(platform.url):
                assert httpx.get(link, timeout=10, follow_redirects=True).status_code < 500
                fetched += 1
    assert fetched >= 18
    assert [stored(platform, t, "politisk-styrgrupp", "p:") for t in ("insights_answers", "insights_reads")] == before


def test_the_sign_in_pages_have_no_wcag_2_1_aa_violations(platform: Platform, browser: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{platform.url}/auth/callback?code=x&state=y")  # no sign-in under way
        assert page.get_by_role("heading", name="Inloggningen gick inte att slutföra").is_visible()
        assert axe_violations(page) == []
        sign_in_in_chromium(page, platform, "medarbetare@fvm.example", "/insights/")
        assert page.get_by_role("heading", name="Du har inte behörighet till den här sidan").is_visible()
        assert axe_violations(page) == []  # no access
        page.goto(f"{platform.url}/auth/logout")
        assert axe_violations(page) == []  # the sign-out form
        page.get_by_role("button", name="Logga ut").click()
        assert page.get_by_role("heading", name="Du är utloggad").is_visible()
        assert axe_violations(page) == []  # signed out
    finally:
        context.close()


def test_the_console_shows_each_person_the_events_of_their_programmes_with_their_delivery(
        platform: Platform, delivered: dict[str, Any], browser: Any, tmp_path: Any) -> None:
    """An FVM editor sees the event, who published it, that it was delivered and each channel's count; a reader
    sees the same and is told why they cannot publish; an FVIS editor sees nothing of FVM; nobody signed in is
    sent to sign in. Every page passes axe-core."""
    totals = delivered["status"]["totals"]
    for sub, sees, note in (("redaktor@fvm.example", True, False), ("lasare@fvm.example", True, True),
                            ("redaktor@fvis.example", False, False)):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{platform.url}/console/")
            assert not page.url.startswith(platform.url)  # at the provider: the console is for people signed in
            sign_in_in_chromium(page, platform, sub, "/console/")
            assert page.get_by_role("heading", name="Händelser", exact=True).is_visible()
            assert (TITLE in page.content()) == sees, sub
            assert page.get_by_text("inte publicera").is_visible() == note, sub
            if sees:
                row = page.get_by_role("row").filter(has_text=TITLE)
                assert "Levererad" in row.inner_text()
                for channel, count in totals.items():
                    label = {"email": "E-post", "teams": "Teams", "intranet": "Intranätet"}[channel]
                    progress = row.get_by_label(f"{label}: {count['sent'] + count['failed']} av "
                                                f"{count['targeted']} klara")
                    assert progress.get_attribute("value") == str(count["sent"] + count["failed"])
                page.screenshot(path=str(tmp_path / f"console-{sub}.png"), full_page=True)
            assert axe_violations(page) == [], sub
        finally:
            context.close()


def test_the_consoles_progress_moves_while_the_mails_go_out_without_reloading_the_page(
        platform: Platform, delivered: dict[str, Any], browser: Any) -> None:
    """An event published while the console is open appears, and its progress reaches every channel's count, in
    the same page (nothing reloads); every script comes from Budkavle itself."""
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in_in_chromium(page, platform, "redaktor@fvm.example", "/console/")
        elsewhere: list[str] = []  # from here on, Budkavle's own pages only (not the provider's sign-in form)
        page.on("request", lambda r: None if r.url.startswith(platform.url) else elsewhere.append(r.url))
        page.reload()
        page.evaluate("window.stillTheSamePage = true")
        event = {**steering_decision(), "payload": {**steering_decision()["payload"], "title": "Beslut om utbildning"}}
        auth = {"Authorization": f"Bearer {platform.token}"}
        accepted = httpx.post(f"{platform.url}/v1/events", json=event, headers=auth, timeout=30)
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.json()["status_url"]
        wait_until(lambda: httpx.get(status_url, headers=auth, timeout=10).json()["status"] == "delivered", 90,
                   "the new event to be delivered")
        totals = httpx.get(status_url, headers=auth, timeout=10).json()["totals"]
        row = page.get_by_role("row").filter(has_text="Beslut om utbildning")
        row.get_by_text("Levererad").wait_for(timeout=30_000)  # the page's own asking brings it
        email = totals["email"]
        assert row.get_by_label(f"E-post: {email['sent'] + email['failed']} av {email['targeted']} klara").is_visible()
        assert page.evaluate("window.stillTheSamePage") is True
        assert elsewhere == []
    finally:
        context.close()
