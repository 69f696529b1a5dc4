"""Fixtures shared by every layer of the suite."""

import base64
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import Event, parse_event
from contracts.people import SessionEnded
from programs import Program, Role, load_program
from programs.loader import copy_without_approval
from services.common.db import create_engine
from services.common.people import Person
from services.common.sessions import Sessions
from services.common.signin import People, Provider, build_signin_router
from services.embedded.oidc import LocalProvider
from services.tailor.directory import Recipient, synthetic_directory

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "deploy" / "programs"
TEMPLATES_DIR = ROOT / "templates"


@pytest.fixture(scope="session")
def fvm() -> Program:
    return load_program(PROGRAMS_DIR / "fvm.yaml")


@pytest.fixture(scope="session")
def fvis() -> Program:
    return load_program(PROGRAMS_DIR / "fvis.yaml")


def without_approval(program: Program) -> Program:
    """The programme as if its file asked no approval: for tests of what happens once an event is released
    (approval itself is tested with the programme files as they are)."""
    return program.model_copy(update={"approval": None})


@pytest.fixture(scope="session")
def open_programs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`deploy/programs` without the approval rules, for platforms started by tests of what happens after an
    event is released."""
    return copy_without_approval(PROGRAMS_DIR, tmp_path_factory.mktemp("programs-without-approval"))


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
    payload = envelope.pop("payload") if "payload" in envelope else payloads[event_type]
    data = {"type": event_type, "program": "fvm", "publisher": "test", "importance": "must_know",
            "sensitivity": "internal", "payload": payload, **envelope}
    return parse_event(data)


def approve_over_http(url: str, event_id: str, session_key: bytes, program: str = "fvm") -> dict[str, Any]:
    """Approve an event awaiting approval as the programme's approver would from the console: with their session
    (made with the services' session key) and its CSRF token. Returns the answer's body."""
    sessions = Sessions(session_key, url, timedelta(minutes=30), timedelta(hours=8))
    approver = Person(f"godkannare@{program}.example", "Godkännare", {program: frozenset({Role.APPROVER})})
    session, value = sessions.issue(approver)
    headers = {"Authorization": f"Session {value}"}
    held = httpx.get(f"{url}/v1/events/{event_id}", headers=headers, timeout=30).json()
    assert held["status"] == "awaiting_approval", held
    approved = httpx.post(f"{url}/v1/events/{event_id}/approval", timeout=30,
                          headers={**headers, "X-CSRF-Token": sessions.csrf(session)},
                          json={"decision": "approve", "content_hash": held["approval"]["content_hash"]})
    assert approved.status_code == 200, approved.text
    return dict(approved.json())


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[str]:
    """A real OpenID provider on loopback (oidc-provider-mock, as `budkavle up` runs it), for the whole run."""
    provider = LocalProvider()
    try:
        yield provider.start()
    finally:
        provider.stop()


def signin_router(issuer: str, people: People, programs: Mapping[str, Program]) -> APIRouter:
    """`/auth/…` against the test provider, for an app under test. What a sign-out ends and announces is tested
    where it matters (test_signin, and end to end); here it ends nothing."""
    async def end(_session: SessionEnded) -> None:
        return None

    return build_signin_router(Provider(issuer, "budkavle-test", "secret"), people, programs, "groups", end)


async def sign_in_as(client: httpx.AsyncClient, issuer: str, sub: str, **roles: set[Role]) -> str:
    """Sign `client` in as `sub` through the provider's own form, with the groups that the programme files map to
    `roles` (the app must serve `signin_router`); the session's id."""
    programs = {code: load_program(PROGRAMS_DIR / f"{code}.yaml") for code in roles}
    groups = [programs[code].roles[role][0] for code, wanted in roles.items() for role in wanted]
    client.cookies.clear()
    async with httpx.AsyncClient(timeout=10) as browser:
        told = await browser.put(f"{issuer}/users/{quote(sub)}", json={"name": sub, "groups": groups})
        assert told.status_code == 204, told.text
        start = await client.get("/auth/login")
        granted = await browser.post(start.headers["location"], data={"sub": sub})  # the provider's form
    back = await client.get(granted.headers["location"])
    assert back.status_code == 303, back.text
    cookie = next(c for name, c in client.cookies.items() if name.endswith("budkavle_session"))
    return str(json.loads(base64.urlsafe_b64decode(cookie.split(".")[0] + "=="))["sid"])


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    yield engine
    await engine.dispose()
