"""The gateway as the console calls it: over HTTP, as the signed-in person (their session passed on, and on
writes the form's CSRF token), so that the gateway, not the page, decides what the person may do."""

from typing import Any

import httpx

from services.common.problems import Problem


class GatewayUnavailable(Exception):
    """The gateway cannot be reached now."""


class Gateway:
    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport

    async def events(self, session_value: str, program: str | None = None) -> list[dict[str, Any]]:
        """The newest events of the person's programmes (or of one), as the gateway reports them."""
        answer = await self._get("/v1/events", session_value, {"program": program} if program else {})
        events: list[dict[str, Any]] = answer["events"]
        return events

    async def _get(self, path: str, session_value: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, transport=self.transport, timeout=30.0) as client:
                response = await client.get(path, params=params, headers={"Authorization": f"Session {session_value}"})
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise GatewayUnavailable(f"the gateway answered {response.status_code}")
        body: dict[str, Any] = response.json()
        if response.status_code != 200:
            raise Problem(response.status_code, str(body.get("detail", "refused")))
        return body
