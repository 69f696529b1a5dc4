"""The embedded platform as a user starts it (`budkavle up`), shared by the end-to-end modules: each module
that asks for `platform` gets its own, on its own data directory and port."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("budkavle")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SMTP_URL", "DATABASE_URL", "BUDKAVLE_API_TOKENS")}
    env.update(BUDKAVLE_DATA_DIR=str(data_dir), BUDKAVLE_HTTP_PORT=str(port), BUDKAVLE_DEMO_HISTORY="false")
    log = open(data_dir / "up.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
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
