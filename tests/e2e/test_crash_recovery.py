"""Nothing accepted is lost: the embedded platform killed (SIGKILL) in the middle of a fan-out, then started
again on the same data directory. Its broker keeps messages in memory only, so whatever was on the bus is
gone; every service makes itself whole from its own tables."""

import email
import email.policy
import json
import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.embedded.broker import free_port
from tests.e2e.crash import POOL_SIZE, FanOut, ledger_by_group, mails, start
from tests.waiting import wait_until


def test_a_fan_out_killed_midway_is_finished_after_a_restart_with_at_most_one_repeat_per_connection(
        tmp_path: Path, open_programs_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, port, "first.log", open_programs_dir)
    try:
        fan_out, sender = FanOut.under_way(url, tmp_path, process)
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: the platform and the sender's process
        process.wait(30)
        wait_until(lambda: not Path(f"/proc/{sender}").exists(), 30, "the sender's process to be gone too")
        before = sum(mails(tmp_path).values())

        process = start(tmp_path, port, "second.log", open_programs_dir)
        status = fan_out.delivered("the event to be delivered after the restart")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    got = mails(tmp_path)
    targeted = status["totals"]["email"]["targeted"]
    repeats = sum(n - 1 for n in got.values())
    print(json.dumps({"targeted": targeted, "mails_before_the_kill": before, "addresses_reached": len(got),
                      "repeated_mails": repeats}))
    assert targeted > 2000 and before < targeted
    assert status["totals"]["email"] == {"targeted": targeted, "sent": targeted, "failed": 0, "deferred": 0,
                                         "next_attempt_at": None}
    # The status's counts per group are the email ledger's, after the crash and the recovery.
    ledger = ledger_by_group(tmp_path, status["event_id"])
    assert {g: {k: v for k, v in channels["email"].items() if k in ("sent", "failed", "deferred") and v}
            for g, channels in status["groups"].items() if "email" in channels} == ledger
    assert len(got) == targeted  # everyone, once at least
    assert repeats <= POOL_SIZE  # and no one more than once, but for the mails in flight at the kill
    teams = {p.name: len(list(p.glob("*.json"))) for p in (tmp_path / "teams").iterdir()}
    assert teams and all(1 <= n <= 2 for n in teams.values())  # at most the one card in flight repeated


def test_an_embargoed_event_is_released_on_time_after_the_platform_was_killed_and_restarted_in_between(
        tmp_path: Path, open_programs_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, port, "first.log", open_programs_dir)
    try:
        auth = {"Authorization": f"Bearer {(tmp_path / 'demo-token').read_text().strip()}"}
        embargo = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=25)
        decision = {"type": "steering.decision", "program": "fvm", "publisher": "FVM programkontor",
                    "importance": "must_know", "sensitivity": "internal", "audiences": ["politisk-styrgrupp"],
                    "embargo_until": embargo.isoformat(), "payload": {
                        "committee": "Regionstyrelsen", "title": "Beslut under embargo",
                        "decision_text": "Regionstyrelsen beslutar.", "rationale": "-", "consequences": "-"}}
        response = httpx.post(f"{url}/v1/events", json=decision, headers=auth, timeout=30)
        assert response.status_code == 202, response.text
        status_url, event_id = response.json()["status_url"], response.json()["event_id"]

        def status() -> str:
            return str(httpx.get(status_url, headers=auth, timeout=10).json()["status"])

        def scheduler_knows() -> bool:
            with sqlite3.connect(tmp_path / "scheduler.db") as db:
                return bool(db.execute("SELECT count(*) FROM scheduler_releases WHERE event_id = ?",
                                       (event_id,)).fetchone()[0])

        wait_until(lambda: status() == "embargoed", 60, "the event to be held")
        wait_until(scheduler_knows, 60, "the scheduler to know when to release it")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert datetime.now(UTC) < embargo, "the test machine was too slow to kill before the embargo"

        process = start(tmp_path, port, "second.log", open_programs_dir)
        wait_until(lambda: status() == "delivered", 120, "the event to go out after the restart")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    sent = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in (tmp_path / "mail").glob("*.eml")]
    mine = [m for m in sent if m["X-Budkavle-Event"] == event_id]
    assert mine and all(m["Date"].datetime >= embargo for m in mine)  # nothing left before the instant
