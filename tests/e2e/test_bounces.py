"""Bounces end to end on the embedded platform: a mail goes out under its own VERP envelope sender, a real RFC
3464 report for it comes back to the inbound SMTP port, and the next plan leaves the address out."""

import smtplib
import socket
from typing import Any

import httpx

from tests.e2e.conftest import Platform, sink_mails, steering_decision
from tests.service.test_bounces import dsn
from tests.waiting import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STAFF_SCALE = 0.01
BOUNCE_PORT = _free_port()
ENVIRONMENT = {"BUDKAVLE_BOUNCE_DOMAIN": "bounces.budkavle.example", "BUDKAVLE_BOUNCE_SMTP_PORT": str(BOUNCE_PORT)}
GROUP = "politisk-styrgrupp"


def undeliverable(platform: Platform) -> Any:
    auth = {"Authorization": f"Bearer {platform.token}"}
    groups = httpx.get(f"{platform.url}/v1/programs/fvm/audiences", headers=auth, timeout=10).json()["audiences"]
    return {g["id"]: g["undeliverable"] for g in groups}[GROUP]


def test_a_hard_bounce_to_the_inbound_port_leaves_the_address_out_of_the_next_plan(platform: Platform) -> None:
    auth = {"Authorization": f"Bearer {platform.token}"}
    body = {**steering_decision(), "audiences": [GROUP]}
    response = httpx.post(f"{platform.url}/v1/events", json=body, headers=auth, timeout=30)
    assert response.status_code == 202, response.text
    event_id = response.json()["event_id"]
    wait_until(lambda: len(sink_mails(platform.data_dir, event_id)) == 9, 60, "the committee's nine mails")
    mails = sink_mails(platform.data_dir, event_id)
    senders = {str(m["Return-Path"]).strip("<>") for m in mails}
    assert len(senders) == 9 and all(s.startswith("bounce+") and s.endswith("@bounces.budkavle.example")
                                     for s in senders)  # each mail its own envelope sender
    assert all(str(m["From"]).endswith("<fvm@vgregion.se>") for m in mails)  # the programme still sends
    gone = mails[0]
    address = str(gone["To"]).split("<")[-1].strip(">")
    assert undeliverable(platform) == 0
    with smtplib.SMTP("127.0.0.1", BOUNCE_PORT) as client:  # as a reporting server sends it: MAIL FROM:<>
        client.sendmail("", [str(gone["Return-Path"]).strip("<>")], dsn("postmaster", address))
    wait_until(lambda: undeliverable(platform) == 1, 30, "the address marked undeliverable")

    dry = httpx.post(f"{platform.url}/v1/events", params={"dry_run": "true"}, json=body, headers=auth, timeout=30)
    [group] = dry.json()["plan"]["groups"]
    assert "1 left out: their address is undeliverable (hard bounce) (email)" in group["reasons"]
    assert dry.json()["plan"]["targeted"][GROUP]["email"] == 8
    listing = httpx.get(f"{platform.url}/v1/directory/undeliverable", headers=auth, timeout=10).json()["addresses"]
    assert [(a["email"], a["reason"]) for a in listing] == [(address, "hard bounce 5.1.1")]
