"""Nothing accepted is lost: the embedded platform killed (SIGKILL) in the middle of a fan-out, then started
again on the same data directory. Its broker keeps messages in memory only, so whatever was on the bus is
gone; every service makes itself whole from its own tables."""

import email
import email.policy
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.email.main import EmailSettings
from services.embedded.broker import free_port
from tests.conftest import ROOT
from tests.waiting import wait_until

#: BUDKAVLE_SMTP_POOL_SIZE's default: a crash repeats at most one mail per connection.
POOL_SIZE = EmailSettings.model_fields["smtp_pool_size"].default
#: Half the demo directory: the go-live in södra still reaches some 2 600 people by mail, killed after 400.
STAFF_SCALE = "0.5"


def start(data_dir: Path, port: int, log_name: str, programs: Path) -> subprocess.Popen[bytes]:
    """`budkavle up` on `data_dir`, with the programme files of `programs` (here: without their approval rules,
    so that what is posted goes out at once)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL", "BUDKAVLE_API_TOKENS")}
    env.update(BUDKAVLE_DATA_DIR=str(data_dir), BUDKAVLE_HTTP_PORT=str(port), BUDKAVLE_LOG_LEVEL="WARNING",
               BUDKAVLE_DEMO_HISTORY="false", BUDKAVLE_PROGRAMS_DIR=str(programs))
    log = open(data_dir / log_name, "wb")  # noqa: SIM115 (the process writes it until it ends)
    # A group of its own, so that the test can kill all of it: `budkavle up` and the sender's process.
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--staff-scale", STAFF_SCALE], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready() -> bool:
        assert process.poll() is None, (data_dir / log_name).read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 120, "the platform to be ready")
    return process


def sender_process(platform: subprocess.Popen[bytes]) -> int | None:
    """The pid of the email service's own process, a child of `budkavle up` (None between two of them)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while being read
        if parent == platform.pid and command[-3:-1] == [b"services.embedded.apart", b"email"]:
            return int(stat.parent.name)
    return None


def golive_in_sodra() -> dict[str, Any]:
    return {"type": "golive.milestone", "program": "fvm", "publisher": "FVM programkontor", "importance": "must_know",
            "sensitivity": "internal", "payload": {
                "area": "södra", "wave": "Våg 1", "planned_date": "2027-04-01", "status": "planned",
                "title": "Södra området inför Millennium", "what_changes": "Alla i södra börjar arbeta i Millennium."}}


@dataclass(frozen=True)
class FanOut:
    """The go-live in södra, posted to the platform at `url` (some 2 600 people by mail)."""

    status_url: str
    auth: dict[str, str]

    @classmethod
    def under_way(cls, url: str, data_dir: Path, platform: subprocess.Popen[bytes]) -> tuple["FanOut", int]:
        """Posted, and 400 mails out; and the pid of the platform's sender process."""
        auth = {"Authorization": f"Bearer {(data_dir / 'demo-token').read_text().strip()}"}
        response = httpx.post(f"{url}/v1/events", json=golive_in_sodra(), headers=auth, timeout=30)
        assert response.status_code == 202, response.text
        wait_until(lambda: len(list((data_dir / "mail").glob("*.eml"))) >= 400, 120, "the fan-out to be under way")
        sender = sender_process(platform)
        assert sender is not None
        return cls(response.json()["status_url"], auth), sender

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(self.status_url, headers=self.auth, timeout=10).json())

    def delivered(self, what: str) -> dict[str, Any]:
        """The status, once the event is delivered."""
        wait_until(lambda: self.status()["status"] == "delivered", 300, what)
        return self.status()


def mails(data_dir: Path) -> Counter[str]:
    """How many mails each address got, read from the local mail sink's files."""
    got: Counter[str] = Counter()
    for path in (data_dir / "mail").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        got[message["To"].addresses[0].addr_spec] += 1
    return got


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


def test_a_sender_process_that_dies_alone_is_started_again_and_the_fan_out_ends_once_for_everyone(
        tmp_path: Path, open_programs_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, port, "up.log", open_programs_dir)
    try:
        fan_out, sender = FanOut.under_way(url, tmp_path, process)
        os.kill(sender, signal.SIGKILL)
        wait_until(lambda: sender_process(process) not in (None, sender), 60, "the runner to start the sender again")
        status = fan_out.delivered("the event to be delivered after the sender came back")
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, 60, "the platform to be whole")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    got = mails(tmp_path)
    targeted = status["totals"]["email"]["targeted"]
    assert status["totals"]["email"]["sent"] == targeted == len(got)
    assert sum(n - 1 for n in got.values()) <= POOL_SIZE  # at most the mails in flight when it died
    assert "service process ended; starting it again" in (tmp_path / "up.log").read_text()
