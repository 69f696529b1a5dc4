from pathlib import Path

import pytest

from services.email.main import EmailSettings, dkim_key
from tests.conftest import ROOT

PROGRAMS = ROOT / "deploy" / "programs"


def settings(**values: object) -> EmailSettings:
    return EmailSettings(programs_dir=PROGRAMS, **values)  # type: ignore[arg-type]


def test_no_dkim_unless_a_key_file_and_a_selector_are_set_and_empty_values_count_as_unset() -> None:
    assert dkim_key(settings()) is None
    assert dkim_key(settings(BUDKAVLE_DKIM_KEY_FILE="", BUDKAVLE_DKIM_SELECTOR="")) is None


@pytest.mark.parametrize(("values", "reason"), [
    ({"BUDKAVLE_DKIM_SELECTOR": "bk"}, "needs both"),
    ({"BUDKAVLE_DKIM_KEY_FILE": "/nonexistent/key.pem", "BUDKAVLE_DKIM_SELECTOR": "bk"}, "No such file"),
    ({"BUDKAVLE_DKIM_KEY_FILE": str(PROGRAMS / "fvm.yaml"), "BUDKAVLE_DKIM_SELECTOR": "bk"}, "not a PEM private key"),
])
def test_a_half_or_wrongly_configured_dkim_key_stops_the_service_with_the_reason(
        values: dict[str, str], reason: str) -> None:
    with pytest.raises(SystemExit, match=reason):
        dkim_key(settings(**values))


def test_the_signing_domain_must_be_given_when_the_programmes_send_from_several(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SystemExit, match="BUDKAVLE_DKIM_DOMAIN"):  # fvm and fvis send from their own domains
        dkim_key(settings(BUDKAVLE_DKIM_KEY_FILE=str(key), BUDKAVLE_DKIM_SELECTOR="bk"))
    chosen = dkim_key(settings(BUDKAVLE_DKIM_KEY_FILE=str(key), BUDKAVLE_DKIM_SELECTOR="bk",
                               BUDKAVLE_DKIM_DOMAIN="vgregion.se"))
    assert chosen is not None and (chosen.domain, chosen.selector) == ("vgregion.se", "bk")
