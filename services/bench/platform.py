"""The whole platform measured as a user runs it: `budkavle up` in a process of its own, a directory of N
people in one target group, one event posted over HTTP, and what it took — by stage, read from the
platform's own structured logs — until the event is delivered.
"""

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from programs.loader import copy_without_approval
from services.common.db import create_engine
from services.common.migrations import upgrade
from services.common.settings import CommonSettings, sqlite_url
from services.embedded.broker import free_port
from services.tailor.directory import Recipient
from services.tailor.store import MIGRATIONS, TailorStore

GROUP = "programdeltagare"  # a primary FVM group with email, Teams and the intranet
#: FVM groups with a Teams channel (their selector's role): alerts take turns among them, as Microsoft allows
#: a webhook 60 posts per 30 s and 100 an hour, and the Teams service keeps to that by deferring cards.
ALERT_GROUPS = {"facklig-referensgrupp": "facklig-referensgrupp", "strategisk-styrgrupp": "strategisk-styrgrupp",
                "programstyrgrupp": "programstyrgrupp", "objektledning": "objektledning",
                "forvaltningsledningar": "forvaltningsledning", "programdeltagare": "programdeltagare"}


@dataclass
class RunningPlatform:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    token: str
    startup_seconds: float
    consumers_joined_seconds: float

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def processes(self) -> dict[str, int]:
        """The platform's own processes by name: `budkavle up` ("platform") and each service that runs apart
        (its broker, the local OpenID provider and the mail sink are not the platform)."""
        found = {"platform": self.process.pid}
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        for pid in children:
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"services.embedded.apart" in command:
                    found[command[command.index(b"services.embedded.apart") + 1].decode()] = int(pid)
        return found

    def peak_rss_mib(self) -> dict[str, float]:
        """Each of the platform's processes' peak resident memory (VmHWM), and their sum ("total")."""
        peaks = {}
        for name, pid in self.processes().items():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[name] = round(int(line.split()[1]) / 1024, 1)
        return {**peaks, "total": round(sum(peaks.values()), 1)}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user and system) each of the platform's processes has used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, pid in self.processes().items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[name] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return used

    def log_times(self, message: str) -> list[tuple[float, dict[str, Any]]]:
        """(Unix time, entry) of every log line with `message`, from the platform's structured log."""
        found = []
        for line in (self.data_dir / "platform.log").read_text(errors="replace").splitlines():
            if message not in line or not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == message:
                found.append((datetime.fromisoformat(entry["ts"]).timestamp(), entry))
        return found


def write_directory(data_dir: Path, people: int) -> None:
    """`people` members of the benchmark's target group (and two of each alert group), written as an import
    would write them."""
    async def write() -> None:
        engine = create_engine(sqlite_url(data_dir, "tailor"))
        everyone = [Recipient(f"b{n:06d}", f"Person {n}", f"b{n:06d}@example.se", organisation="FVM programkontor",
                              role=GROUP, area="västra") for n in range(people)]
        everyone += [Recipient(f"{role}-{n}", f"Ledamot {n}", f"{role}-{n}@example.se", role=role, area="västra")
                     for role in ALERT_GROUPS.values() if role != GROUP for n in range(2)]
        try:
            await upgrade(engine, MIGRATIONS)
            await TailorStore(engine).replace_directory(everyone)
        finally:
            await engine.dispose()

    asyncio.run(write())


@contextmanager
def platform(people: int, smtp_url: str | None) -> Iterator[RunningPlatform]:
    """`budkavle up` on a fresh data directory holding `people` people (the local mail sink unless
    `smtp_url`), ready; stopped with Ctrl-C afterwards."""
    with tempfile.TemporaryDirectory(prefix="budkavle-bench-") as tmp:
        data_dir = Path(tmp)
        write_directory(data_dir, people)
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL", "BUDKAVLE_API_TOKENS")}
        # The bench measures delivery: its must-know events go out without waiting for a person's approval.
        programs = copy_without_approval(CommonSettings().programs_dir, data_dir / "programs")
        env.update(BUDKAVLE_DATA_DIR=tmp, BUDKAVLE_HTTP_PORT=str(port), BUDKAVLE_LOG_LEVEL="INFO",
                   BUDKAVLE_DEMO_HISTORY="false", BUDKAVLE_PROGRAMS_DIR=str(programs))
        if smtp_url:
            env["SMTP_URL"] = smtp_url
        log = open(data_dir / "platform.log", "wb")  # noqa: SIM115 (the platform writes it until it stops)
        started = time.perf_counter()
        # This interpreter, not whatever `python` or `budkavle` is on PATH (make bench does not activate the venv).
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError("the platform did not start: " + (data_dir / "platform.log").read_text()[-2000:])
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            startup = time.perf_counter() - started
            # Ready means accepting (and keeping) events; the consumer groups may still be joining, which
            # would count in the first measurement's time: wait for them, and say how long they took.
            while "joining" in httpx.get(f"{url}/readyz", timeout=5).json().values():  # the sender's own too
                time.sleep(0.02)
            joined = time.perf_counter() - started
            yield RunningPlatform(url, data_dir, process, (data_dir / "demo-token").read_text().strip(), startup,
                                  joined)
        finally:
            process.send_signal(2)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def newsletter() -> dict[str, Any]:
    return {"type": "newsletter.issue", "program": "fvm", "publisher": "bench", "importance": "must_know",
            "sensitivity": "internal", "audiences": [GROUP], "payload": {
                "title": "Nyhetsbrev", "intro": "Det här har hänt sedan sist.",
                "sections": [{"heading": "Utbildning", "body": "Utbildningen i Millennium börjar i juni. " * 8}]}}


def fan_out(p: RunningPlatform) -> dict[str, Any]:
    """One newsletter to everyone in the directory: emails per second, the time of each stage, and the CPU
    seconds each process used per 1 000 mails."""
    cpu_before = p.cpu_seconds()
    started = time.time()
    response = httpx.post(f"{p.url}/v1/events", json=newsletter(), headers=p.auth, timeout=60)
    accepted = time.time()
    response.raise_for_status()
    status_url = response.json()["status_url"]
    while True:
        status = httpx.get(status_url, headers=p.auth, timeout=60).json()
        if status["status"] == "delivered":
            break
        time.sleep(0.25)  # a person watching the status; at most this much is added to the measured time
    done = time.time()
    cpu_after = p.cpu_seconds()
    event_id = response.json()["event_id"]
    relayed = _first(p, "relayed events", event_id, "keys")
    planned = _first(p, "event planned", event_id)
    emitted = _first(p, "commands emitted", event_id)
    sent = status["totals"]["email"]["sent"]
    stages = {"accept": accepted - started, "relay": relayed - accepted, "plan": planned - relayed,
              "render_and_emit": emitted - planned, "deliver_and_record": done - emitted}
    cpu = {name: round((cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / max(sent, 1), 3) for name in cpu_after}
    return {"emails": sent, "seconds": round(done - started, 2), "emails_per_second": round(sent / (done - started)),
            "stages_seconds": {k: round(v, 3) for k, v in stages.items()}, "peak_rss_mib": p.peak_rss_mib(),
            "cpu_seconds_per_1000_emails": cpu}


def _first(p: RunningPlatform, message: str, event_id: str, field: str = "event_id") -> float:
    for at, entry in p.log_times(message):
        value = entry.get(field)
        if value == event_id or (isinstance(value, list) and event_id in value):
            return at
    raise RuntimeError(f"no log line {message!r} for event {event_id}")


def alert_latency(p: RunningPlatform, alerts: int) -> dict[str, Any]:
    """Must-know clinical-leadership decisions one at a time: from the POST's reply to this alert's card in the
    Teams sink and to its first mail in the mail sink (found by the event's id, not by counting files). The
    first alert after the platform started is reported on its own ("cold"); the percentiles are over the
    `alerts` after it, spread over the six groups with a Teams channel."""
    mail_dir = p.data_dir / "mail"
    groups = sorted(ALERT_GROUPS)
    to_card, to_mail = [], []
    seen: set[str] = set()
    for n in range(alerts + 1):
        group = groups[n % len(groups)]
        cards_dir = p.data_dir / "teams" / group
        title = f"Beslut nr {n:04d}"  # unique, and no alert's title is the beginning of another's
        body = {"type": "design.decision", "program": "fvm", "publisher": "bench", "importance": "must_know",
                "sensitivity": "internal", "audiences": [group], "payload": {
                    "workstream": "Vårdadministration", "level": "clinical_leadership", "title": title,
                    "summary": "Utskrivningen blir gemensam i hela regionen."}}
        response = httpx.post(f"{p.url}/v1/events", json=body, headers=p.auth, timeout=30)
        replied = time.perf_counter()
        response.raise_for_status()
        marker = f"X-Budkavle-Event: {response.json()['event_id']}".encode()
        card = mail = None
        while card is None or mail is None:
            now = time.perf_counter()
            if card is None and _new_with(cards_dir, ".json", title.encode(), seen):
                card = now - replied
            if mail is None and _new_with(mail_dir, ".eml", marker, seen):
                mail = now - replied
            if now - replied > 30:
                raise RuntimeError(f"alert {n} did not arrive within 30 s")
            time.sleep(0.001)
        to_card.append(card)
        to_mail.append(mail)
    return {"alerts": alerts, "to_teams_card_ms": _percentiles(to_card[1:]),
            "to_first_mail_ms": _percentiles(to_mail[1:]),
            "first_after_cold_start_ms": {"to_teams_card": round(to_card[0] * 1000, 1),
                                          "to_first_mail": round(to_mail[0] * 1000, 1)}}


def _new_with(folder: Path, suffix: str, needle: bytes, seen: set[str]) -> bool:
    """Whether a file not looked at before in `folder` holds `needle` (files looked at are remembered)."""
    try:
        entries = [e.path for e in os.scandir(folder) if e.name.endswith(suffix) and e.path not in seen]
    except FileNotFoundError:
        return False
    found = False
    for path in entries:
        try:
            content = Path(path).read_bytes()
        except OSError:
            continue
        if not content.endswith(b"\n") and suffix == ".eml":
            continue  # still being written: look again
        seen.add(path)
        found = found or needle in content
    return found


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": round(cuts[49] * 1000, 1), "p95": round(cuts[94] * 1000, 1), "p99": round(cuts[98] * 1000, 1)}


def smtp_sink_available() -> bool:
    return bool(shutil.which("smtp-sink") or os.path.exists("/usr/sbin/smtp-sink"))
