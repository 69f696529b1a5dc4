"""The tailor's internal API, which the gateway asks for dry runs and previews when they run apart."""

import json

import httpx
import pytest
from fastapi import FastAPI

from services.common.auth import TokenAuthority, parse_tokens
from services.common.problems import install_problem_handler
from services.tailor.main import build_http
from services.tailor.service import Tailor
from tests.conftest import make_event

TOKEN = {"Authorization": "Bearer tailor-test-token-1"}


async def test_previews_and_plans_over_the_internal_api_for_the_tokens_programmes_only(tailor: Tailor) -> None:
    app = FastAPI()
    install_problem_handler(app)
    app.include_router(build_http(tailor, TokenAuthority(parse_tokens("tailor-test-token-1=fvm,other-token-12=fvis"))))
    body = make_event(audiences=["programstyrgrupp"]).model_dump_json()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor") as client:
        preview = await client.post("/internal/v1/previews", params={"audience": "programstyrgrupp", "channel": "teams"},
                                    content=body, headers=TOKEN)
        assert preview.status_code == 200 and '"AdaptiveCard"' in preview.json()[".json"]
        plan = await client.post("/internal/v1/plans", content=body, headers=TOKEN)
        assert plan.json()["targeted"]["programstyrgrupp"]["teams"] == 1
        unknown = await client.post("/internal/v1/previews", params={"audience": "programstyrgrupp",
                                                                     "channel": "brevduva"}, content=body, headers=TOKEN)
        assert unknown.status_code == 422 and "brevduva" in unknown.text
        foreign = await client.post("/internal/v1/previews", params={"audience": "programstyrgrupp", "channel": "email"},
                                    content=body, headers={"Authorization": "Bearer other-token-12"})
        assert foreign.status_code == 403


def test_a_preview_never_carries_a_working_link_whatever_event_id_its_body_names(tailor: Tailor) -> None:
    """A probe posted another programme's event id to /v1/previews and answered through the card's links."""
    import re

    from services.common.links import FEEDBACK, BadLink

    event = make_event(audiences=["programstyrgrupp"])  # its event_id could be any event's, of any programme
    program, audience = tailor.programs["fvm"], tailor.programs["fvm"].audience("programstyrgrupp")
    assert audience is not None

    def tokens(text: str) -> set[str]:
        found = set(re.findall(r"/(?:feedback|r)/([A-Za-z0-9_.-]+)", text))
        assert found, "the message has follow-up links"
        return found

    sent = json.dumps(tailor.renderer.teams_card(event, program, audience))
    for token in tokens(sent):  # what a group really gets: live links
        assert tailor.renderer.signer.verify(FEEDBACK, token)["ev"] == str(event.event_id)
    for channel in ("teams", "intranet"):
        for text in tailor.preview(event, "programstyrgrupp", channel).values():
            for token in tokens(text):
                with pytest.raises(BadLink):
                    tailor.renderer.signer.verify(FEEDBACK, token)


async def test_a_signed_in_editor_plans_previews_and_counts_through_the_gateway_with_their_session(
        tailor: Tailor) -> None:
    """The console's person reaches the tailor through the gateway with their session: the tailor checks its
    signature and the person's role in the event's programme again (a reader or another programme's editor
    gets 403, a forged session 401)."""
    from datetime import timedelta

    from fastapi import Response

    from programs import Role
    from services.common.people import Person
    from services.common.sessions import Sessions

    sessions = Sessions(b"a-session-key-that-is-long-enough-too", "http://gw", timedelta(minutes=30), timedelta(hours=8))

    def session_of(sub: str, **roles: set[Role]) -> dict[str, str]:
        response = Response()
        sessions.open(response, Person(sub, sub, {p: frozenset(r) for p, r in roles.items()}))
        value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        return {"Authorization": f"Session {value}"}

    app = FastAPI()
    install_problem_handler(app)
    app.include_router(build_http(tailor, TokenAuthority(parse_tokens("tailor-test-token-1=fvm")), sessions))
    body = make_event(audiences=["programstyrgrupp"]).model_dump_json()
    editor = session_of("redaktor@fvm.example", fvm={Role.EDITOR})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor") as client:
        plan = await client.post("/internal/v1/plans", content=body, headers=editor)
        assert plan.status_code == 200 and plan.json()["targeted"]["programstyrgrupp"]["teams"] == 1
        counts = await client.get("/internal/v1/programs/fvm/members", headers=editor)
        assert counts.status_code == 200 and counts.json()["members"]["programstyrgrupp"] > 0
        assert set(counts.json()["members"]) == {a.id for a in tailor.programs["fvm"].audiences}
        assert counts.json()["undeliverable"] == {}  # no address has bounced
        for refused in (session_of("lasare@fvm.example", fvm={Role.READER}),
                        session_of("redaktor@fvis.example", fvis={Role.EDITOR})):
            assert (await client.post("/internal/v1/plans", content=body, headers=refused)).status_code == 403
        assert (await client.get("/internal/v1/programs/fvis/members", headers=editor)).status_code == 403
        forged = await client.post("/internal/v1/plans", content=body, headers={"Authorization": "Session a.b"})
        assert forged.status_code == 401
