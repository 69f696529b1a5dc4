"""The embedded platform as a user starts it (`budkavle up`), shared by the end-to-end modules: each module
that asks for `platform` gets its own, on its own data directory and port."""

import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.embedded.broker import free_port
from tests.conftest import ROOT
from tests.waiting import wait_until

COMMITTEES = ("politisk-styrgrupp", "programstyrgrupp", "strategisk-styrgrupp")


@dataclass
class Platform:
    url: str
    data_dir: Path
    token: str
    kafka_port: int
    process: subprocess.Popen[bytes]


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             open_programs_dir: Path) -> Iterator[Platform]:
    """`budkavle up`, with the demo directory at the module's STAFF_SCALE (its whole size unless it says), and
    the programme files without their approval rules unless the module's APPROVAL_RULES says to keep them
    (most modules test what happens once an event is released), and the module's ENVIRONMENT."""
    data_dir = tmp_path_factory.mktemp("budkavle")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL", "BUDKAVLE_API_TOKENS")}
    env.update(BUDKAVLE_DATA_DIR=str(data_dir), BUDKAVLE_HTTP_PORT=str(port), BUDKAVLE_DEMO_HISTORY="false")
    env.update(getattr(request.module, "ENVIRONMENT", {}))  # a module's own settings (e.g. taking bounces in)
    if not getattr(request.module, "APPROVAL_RULES", False):
        env["BUDKAVLE_PROGRAMS_DIR"] = str(open_programs_dir)
    log = open(data_dir / "up.log", "wb")  # noqa: SIM115
    scale = str(getattr(request.module, "STAFF_SCALE", 1.0))
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--staff-scale", scale], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: is_ready(url) or process.poll() is not None, 120, "the platform to be ready")
        assert process.poll() is None, (data_dir / "up.log").read_text()[-3000:]
        runtime = json.loads((data_dir / "runtime.json").read_text())
        yield Platform(url, data_dir, (data_dir / "demo-token").read_text().strip(),
                       int(runtime["kafka_bootstrap_servers"].rsplit(":", 1)[1]), process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def steering_decision() -> dict[str, Any]:
    return {
        "type": "steering.decision", "program": "fvm", "publisher": "FVM programkontor",
        "importance": "must_know", "sensitivity": "internal", "audiences": list(COMMITTEES),
        "payload": {"committee": "Regionstyrelsen", "title": "Ny tidplan för införandet av Millennium",
                    "decision_text": "Regionstyrelsen godkänner den reviderade tidplanen för FVM.",
                    "rationale": "Förhandlingarna har gett en tidplan som håller.",
                    "consequences": "Södra området inför hösten 2024.", "effective_date": "2022-05-17"},
    }


@pytest.fixture(scope="module")
def delivered(platform: Platform) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {platform.token}"}
    response = httpx.post(f"{platform.url}/v1/events", json=steering_decision(), headers=auth, timeout=30)
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]

    def done() -> bool:
        return bool(httpx.get(status_url, headers=auth, timeout=10).json()["status"] == "delivered")
    wait_until(done, 90, "the event to be delivered")
    return {"event_id": response.json()["event_id"], "status": httpx.get(status_url, headers=auth).json()}


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: Debian's chromium, headless, with nothing of its own reaching out to the network (a closed machine).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextmanager
def signed_in(platform: Platform | str, sub: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in as `sub` through the local provider's own form: the requests a browser makes
    (sign-in, the provider's authorization form, the callback), never a session made up by the test."""
    url = platform if isinstance(platform, str) else platform.url
    with httpx.Client(timeout=10) as client:
        start = client.get(f"{url}/auth/login")
        assert start.status_code == 303, start.text
        granted = client.post(start.headers["location"], data={"sub": sub})  # the provider's form, submitted
        assert granted.status_code == 302, granted.text
        back = client.get(granted.headers["location"])  # Budkavle's callback
        assert back.status_code == 303, back.text
        yield client


def sign_in_in_chromium(page: Any, platform: Platform, sub: str, next_path: str = "/intranet/") -> None:
    """Sign in as `sub` through the provider's form in the browser, and come back to `next_path`."""
    page.goto(f"{platform.url}/auth/login?next={next_path}")
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{platform.url}{next_path}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def axe_violations(page: Any) -> list[tuple[str, str, list[Any]]]:
    """WCAG 2.1 AA violations on the page as it stands, by axe-core (npm), which must have looked at something."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA)
    assert result["passes"], "axe looked at nothing"
    return [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]


def sink_mails(data_dir: Path, event_id: str) -> list[EmailMessage]:
    """The local mail sink's mails of one event (the email service names the event in a header), in order."""
    found = []
    for path in sorted((data_dir / "mail").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["X-Budkavle-Event"] == event_id:
            found.append(msg)
    return found  # type: ignore[return-value]
