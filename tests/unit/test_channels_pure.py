import base64
import email
import re
import subprocess
from email.policy import default
from uuid import uuid4

import pytest

from contracts.deliveries import EmailRecipient, PersonalLink, SendEmail, Slot
from services.common.delivery import PermanentDeliveryError
from services.common.links import LinkSigner
from services.email.sender import Mail
from services.email.smtp import parse_smtp_url
from services.email.wire import Dkim, Personal, WireFormat, build_message, to_header
from services.teams.webhook import check_webhook_url, envelope, retry_after_seconds

ALLOWED = ("webhook.office.com", "logic.azure.com")

PREFERENCES = Slot(slot=PersonalLink.PREFERENCES)


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


@pytest.fixture(scope="module")
def dkim_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """An RSA key pair made by openssl: the private key (PEM) and the public key as a DNS TXT record says it."""
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                    str(private)], check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return private.read_bytes(), "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def test_a_bulk_mail_is_each_persons_own_signed_by_dkim_and_verified_by_dkimpy(dkim_keys: tuple[bytes, str]) -> None:
    import dkim

    private, record = dkim_keys
    signer = LinkSigner(b"k" * 32)
    wire = WireFormat(personal=Personal(signer, "https://budkavle.test"),
                      dkim_key=Dkim("bk2026", "vgregion.se", private))
    command = _mails()[0].command.model_copy(update={
        "bulk": True, "text_body": ("Hej!\nDina val: https://budkavle.test/preferences/", PREFERENCES, "\n"),
        "html_body": ('<p>Hej!</p><p><a href="https://budkavle.test/preferences/', PREFERENCES, '">Dina val</a></p>')})
    first, second = Mail.each_of(command)
    raw = wire.to_bytes(first)
    message = email.message_from_bytes(raw, policy=default)
    [token] = re.findall(r"/unsubscribe/([^>]+)>", str(message["List-Unsubscribe"]))
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert signer.verify("prefs", token) == {"program": "fvm", "person": "p1", "audience": "programstyrgrupp"}
    assert f"/preferences/{token}" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"/preferences/{token}" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "preferences/\"" not in raw.decode() and "preferences/\n" not in raw.decode()  # every slot filled
    assert token not in wire.to_bytes(second).decode()  # the next person's copy is theirs

    signed = message["DKIM-Signature"]
    assert "d=vgregion.se" in signed and "s=bk2026" in signed
    for header in ("from", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"):
        assert header in signed.lower()
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record.encode() if name == b"bk2026._domainkey.vgregion.se."
                       else None)
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record.encode())
