"""The local sinks of the embedded mode hold what was sent to people: this machine only, and bounded."""

import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.embedded.sinks import mail_viewer, teams_sink

CARD = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                            "content": {"type": "AdaptiveCard", "version": "1.5", "body": []}}]}


def client(tmp_path: Path, host: str) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(mail_viewer(tmp_path))
    app.include_router(teams_sink(tmp_path))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 50000)), base_url="http://sink")


async def test_the_sinks_answer_this_machine_and_refuse_any_other(tmp_path: Path) -> None:
    async with client(tmp_path, "127.0.0.1") as local, client(tmp_path, "203.0.113.5") as remote:
        assert (await local.post("/teams-sink/styrgrupp", json=CARD)).status_code == 202
        assert (await local.get("/mail/")).status_code == 200
        assert (await remote.post("/teams-sink/styrgrupp", json=CARD)).status_code == 403
        assert (await remote.get("/mail/")).status_code == 403
    assert [p.name for p in (tmp_path / "teams" / "styrgrupp").iterdir()] == ["1.json"]


async def test_the_teams_sink_refuses_a_post_larger_than_any_card_and_keeps_nothing_of_it(tmp_path: Path) -> None:
    huge = {**CARD, "padding": "x" * (70 * 1024)}
    async with client(tmp_path, "127.0.0.1") as local:
        response = await local.post("/teams-sink/styrgrupp", content=json.dumps(huge))
    assert response.status_code == 413
    assert not (tmp_path / "teams" / "styrgrupp").exists() or not any((tmp_path / "teams" / "styrgrupp").iterdir())
