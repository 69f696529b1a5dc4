"""Fixtures shared by every layer of the suite."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import Event, parse_event
from programs import Program, Role, load_program
from services.common.db import create_engine
from services.common.people import Person
from services.common.sessions import Session, Sessions
from services.tailor.directory import Recipient, synthetic_directory

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "deploy" / "programs"
TEMPLATES_DIR = ROOT / "templates"


@pytest.fixture(scope="session")
def fvm() -> Program:
    return load_program(PROGRAMS_DIR / "fvm.yaml")


@pytest.fixture(scope="session")
def small_directory(fvm: Program) -> list[Recipient]:
    """The synthetic directory at 2 % of its staff: every committee and municipality, fewer staff."""
    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    return list(synthetic_directory(municipalities, staff_scale=0.02))


def make_event(event_type: str = "steering.decision", **envelope: Any) -> Event:
    payloads: dict[str, dict[str, Any]] = {
        "steering.decision": {"committee": "Regionstyrelsen", "title": "Ny tidplan",
                              "decision_text": "Regionstyrelsen godkänner den nya tidplanen.",
                              "rationale": "Förhandlingarna är klara.", "consequences": "Södra först."},
        "design.decision": {"workstream": "Vårdadministration", "level": "workstream", "title": "Beslut",
                            "summary": "Sammanfattning av beslutet."},
        "golive.milestone": {"area": "södra", "planned_date": "2024-10-01", "status": "planned",
                             "title": "Södra inför Millennium", "what_changes": "Ny journal."},
        "status.update": {"title": "Läget", "summary": "Arbetet går enligt plan."},
        "newsletter.issue": {"title": "Nyhetsbrev", "sections": [{"heading": "Rubrik", "body": "Text."}]},
    }
    payload = envelope.pop("payload", payloads[event_type])
    data = {"type": event_type, "program": "fvm", "publisher": "test", "importance": "must_know",
            "sensitivity": "internal", "payload": payload, **envelope}
    return parse_event(data)


def sign_in_as(client: httpx.AsyncClient, sessions: Sessions, sub: str, **roles: set[Role]) -> Session:
    """Give `client` a session cookie for `sub` with `roles` per programme, as the sign-in makes it. For tests of
    what a session may do; the sign-in itself is tested against the provider, and in Chromium through its form."""
    response = Response()
    session = sessions.open(response, Person(sub=sub, name=sub, roles={p: frozenset(r) for p, r in roles.items()}))
    client.cookies.clear()
    client.cookies.set(sessions.cookie, response.headers["set-cookie"].split(";")[0].split("=", 1)[1])
    return session


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    yield engine
    await engine.dispose()
