import email
from email.policy import default
from uuid import uuid4

import pytest

from contracts.deliveries import EmailRecipient, SendEmail
from services.common.delivery import PermanentDeliveryError
from services.email.sender import Mail
from services.email.smtp import build_message, parse_smtp_url, to_header
from services.teams.webhook import check_webhook_url, envelope, retry_after_seconds

ALLOWED = ("webhook.office.com", "logic.azure.com")


def test_smtp_url_gives_host_port_credentials_and_starttls() -> None:
    c = parse_smtp_url("smtp://user%40x:p%3Ass@mail.example.se:587?starttls=true")
    assert (c.host, c.port, c.username, c.password, c.starttls, c.use_tls) == (
        "mail.example.se", 587, "user@x", "p:ss", True, False)
    assert parse_smtp_url("smtp://mail:2525?tls=true").use_tls


@pytest.mark.parametrize("url", ["http://mail:25", "smtp://", "smtp://mail:25?ssl=yes",
                                 "smtp://mail:25?tls=true&starttls=true", "smtp://mail:notaport"])
def test_a_bad_smtp_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        parse_smtp_url(url)


def _mails() -> list[Mail]:
    return Mail.each_of(SendEmail(
        event_id=uuid4(), program="fvm", audience_id="programstyrgrupp", sender_name="FVM",
        sender_address="fvm@vgregion.se", subject="Beslut: ny tidplan", text_body="Text", html_body="<p>Html</p>",
        recipients=(EmailRecipient(id="p1", address="anna@example.se", name="Anna Åberg"),
                    EmailRecipient(id="p2", address="bo@example.se", name="Öberg, Bo"))))


def test_email_is_multipart_text_and_html_from_the_programme() -> None:
    msg = build_message(_mails()[0])
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "fvm@vgregion.se" in msg["From"] and "List-Unsubscribe" not in msg


def test_newsletter_email_carries_one_click_unsubscribe() -> None:
    msg = build_message(_mails()[0], list_unsubscribe="https://budkavle.test/u/abc")
    assert msg["List-Unsubscribe"] == "<https://budkavle.test/u/abc>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_webhook_must_be_https_to_an_allowed_host() -> None:
    check_webhook_url("https://prod-01.westeurope.logic.azure.com/workflows/x", ALLOWED, False)
    for url in ("http://prod.logic.azure.com/x", "https://evil.example.com/x", "https://logic.azure.com.evil.se/x",
                "https://169.254.169.254/x", "http://127.0.0.1:8080/teams-sink/a"):
        with pytest.raises(PermanentDeliveryError):
            check_webhook_url(url, ALLOWED, False)


def test_loopback_http_only_when_allowed_for_the_local_sink() -> None:
    check_webhook_url("http://127.0.0.1:8080/teams-sink/a", ALLOWED, True)


def test_retry_after_is_honoured_and_capped() -> None:
    assert retry_after_seconds("3", 0.5) == 3.0
    assert retry_after_seconds("99999", 0.5) == 3600.0
    assert retry_after_seconds(None, 0.5) == 0.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 0.5) == 0.5


def test_a_card_travels_in_the_workflows_message_envelope() -> None:
    body = envelope({"type": "AdaptiveCard"})
    assert body["type"] == "message"
    assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"


def test_wire_format_round_trips_swedish_names_and_reuses_the_groups_body() -> None:
    from email import message_from_bytes
    from email.policy import default

    from services.email.smtp import WireFormat

    wire = WireFormat()
    first, second = _mails()
    a, b = wire.to_bytes(first), wire.to_bytes(second)
    parsed = message_from_bytes(b, policy=default)
    assert parsed["To"].addresses[0].display_name == "Öberg, Bo"
    assert parsed["Subject"] == "Beslut: ny tidplan"
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parsed.iter_parts())
    assert a.split(b"MIME-Version")[1] == b.split(b"MIME-Version")[1]  # one body for the whole group
    assert a.isascii() and b.isascii()


@pytest.mark.parametrize("name", ["", "Anna Berg", "Åsa Öberg-Ängström", 'Dr. "Kalle" O\'Neil', "Bo (chef), FVM",
                                  "x" * 90, "Ö" * 80])
def test_the_to_line_reads_back_as_the_persons_name_and_address(name: str) -> None:
    line = to_header(name, "anna.berg@example.se")
    parsed = email.message_from_bytes(f"{line}Subject: x\r\n\r\n".encode("ascii"), policy=default)
    [address] = parsed["To"].addresses
    assert address.addr_spec == "anna.berg@example.se"
    if "\r\n " not in line:  # Python's parser keeps a space between folded encoded words; short names are exact
        assert address.display_name == name
    assert all(len(part) <= 998 for part in line.split("\r\n"))  # RFC 5322: a line may not be longer
