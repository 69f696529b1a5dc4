"""What the crash tests share: `budkavle up` on a data directory in a process group of its own, the
platform's sender process, a fan-out under way, and the mails the local sink received."""

import email
import email.policy
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.email.main import EmailSettings
from tests.conftest import ROOT
from tests.waiting import wait_until

#: BUDKAVLE_SMTP_POOL_SIZE's default: a crash repeats at most one mail per connection.
POOL_SIZE = EmailSettings.model_fields["smtp_pool_size"].default
#: Half the demo directory: the go-live in södra still reaches some 2 600 people by mail, killed after 400.
STAFF_SCALE = "0.5"


def start(data_dir: Path, port: int, log_name: str, programs: Path,
          staff_scale: str = STAFF_SCALE) -> subprocess.Popen[bytes]:
    """`budkavle up` on `data_dir`, with the programme files of `programs` (here: without their approval rules,
    so that what is posted goes out at once)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL", "BUDKAVLE_API_TOKENS")}
    env.update(BUDKAVLE_DATA_DIR=str(data_dir), BUDKAVLE_HTTP_PORT=str(port), BUDKAVLE_LOG_LEVEL="WARNING",
               BUDKAVLE_DEMO_HISTORY="false", BUDKAVLE_PROGRAMS_DIR=str(programs))
    log = open(data_dir / log_name, "wb")  # noqa: SIM115 (the process writes it until it ends)
    # A group of its own, so that the test can kill all of it: `budkavle up` and the sender's process.
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--staff-scale", staff_scale], cwd=ROOT,
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


def ledger_by_group(data_dir: Path, event_id: str) -> dict[str, dict[str, int]]:
    """The email ledger's deliveries of an event: group → status → how many, read from the sender's own file."""
    found: dict[str, dict[str, int]] = {}
    with sqlite3.connect(data_dir / "email.db") as db:
        for group, status, n in db.execute("SELECT audience_id, status, COUNT(*) FROM email_ledger WHERE event_id = ? "
                                           "GROUP BY audience_id, status", (event_id,)):
            found.setdefault(group, {})[status] = n
    return found


def mails(data_dir: Path) -> Counter[str]:
    """How many mails each address got, read from the local mail sink's files."""
    got: Counter[str] = Counter()
    for path in (data_dir / "mail").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        got[message["To"].addresses[0].addr_spec] += 1
    return got


