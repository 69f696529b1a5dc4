from datetime import UTC, datetime, timedelta

import pytest

from services.common.links import BadLink, LinkSigner

KEY = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_signed_link_gives_back_its_claims_until_it_expires() -> None:
    clock = Clock()
    signer = LinkSigner(KEY, clock)
    token = signer.sign("prefs", {"program": "fvm", "person": "p1"}, timedelta(days=60))
    assert signer.verify("prefs", token) == {"program": "fvm", "person": "p1"}
    clock.now += timedelta(days=61)
    with pytest.raises(BadLink) as expired:
        signer.verify("prefs", token)
    assert expired.value.expired


def test_a_forged_altered_or_foreign_link_is_refused() -> None:
    signer = LinkSigner(KEY, Clock())
    token = signer.sign("prefs", {"program": "fvm", "person": "p1"}, timedelta(days=1))
    payload, mac = token.split(".")
    other = LinkSigner(b"x" * 32, Clock()).sign("prefs", {"program": "fvm", "person": "p1"}, timedelta(days=1))
    altered = signer.sign("prefs", {"program": "fvm", "person": "p2"}, timedelta(days=1)).split(".")[0] + "." + mac
    for bad in (other, altered, payload, "", "a.b", token + "x", "." * 3000, "é.x", f"{payload}.{mac}é", "\x00.\x00"):
        with pytest.raises(BadLink) as refused:
            signer.verify("prefs", bad)
        assert not refused.value.expired
    with pytest.raises(BadLink, match="something else"):
        signer.verify("feedback", token)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LinkSigner(b"short")
