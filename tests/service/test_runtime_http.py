"""What every service's HTTP app serves besides its own routes: the API viewer with its own assets (no CDN),
and metrics behind their own token."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.common.runtime import Runtime
from services.common.settings import CommonSettings


async def client_for(tmp_path: Path, metrics_token: str) -> httpx.AsyncClient:
    settings = CommonSettings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path, metrics_token=metrics_token)
    # Routes only: the lifespan (broker, database) never runs.
    app = Runtime.create(settings, client_id="test", service="gateway").http_app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://budkavle.example.se")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(tmp_path, "a-metrics-token-of-some-length") as c:
        yield c


async def test_the_api_viewer_loads_every_asset_from_budkavle_itself(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/assets/favicon-32x32.png"):
        assert asset in page.text
        fetched = await client.get(asset)
        assert fetched.status_code == 200 and len(fetched.content) > 500, asset
    assert (await client.get("/redoc")).status_code == 404  # its viewer would come from a CDN


async def test_metrics_need_their_own_bearer_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong-token"})).status_code == 401
    shown = await client.get("/metrics", headers={"Authorization": "Bearer a-metrics-token-of-some-length"})
    assert shown.status_code == 200 and "budkavle_redeliveries" in shown.text


async def test_without_a_metrics_token_there_are_no_metrics_to_see(tmp_path: Path) -> None:
    async with await client_for(tmp_path, "") as c:
        assert (await c.get("/metrics")).status_code == 404
        assert (await c.get("/metrics", headers={"Authorization": "Bearer "})).status_code == 404
