"""The gateway as the console calls it: over HTTP, as the signed-in person (their session passed on, and on
writes the form's CSRF token), so that the gateway, not the page, decides what the person may do."""

from dataclasses import dataclass
from typing import Any

import httpx


class GatewayUnavailable(Exception):
    """The gateway cannot be reached now."""


class Refused(Exception):
    """The gateway said no (4xx): its status, its reason, and each invalid field's path and reason."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []


@dataclass(frozen=True)
class As:
    """Who the console acts for: the person's session cookie's value, and the CSRF token of the form they sent
    (empty for what only reads)."""

    session: str
    csrf: str = ""


class Gateway:
    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport

    async def events(self, who: As, program: str | None = None) -> list[dict[str, Any]]:
        """The newest events of the person's programmes (or of one), as the gateway reports them."""
        answer = await self._call("GET", "/v1/events", who, {"program": program} if program else {})
        events: list[dict[str, Any]] = answer["events"]
        return events

    async def event(self, who: As, event_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/events/{event_id}", who)

    async def plan(self, who: As, event: dict[str, Any]) -> dict[str, Any]:
        """The delivery plan of the event, nothing sent (the gateway's dry run)."""
        plan: dict[str, Any] = (await self.dry_run(who, event))["plan"]
        return plan

    async def dry_run(self, who: As, event: dict[str, Any]) -> dict[str, Any]:
        """The gateway's dry run: the plan, and why the event would wait for approval (`approval`)."""
        return await self._call("POST", "/v1/events", who, {"dry_run": "true"}, event)

    async def approvals(self, who: As) -> list[str]:
        """The ids of the events awaiting approval in the person's programmes, oldest submission first."""
        queue: list[str] = (await self._call("GET", "/v1/approvals", who))["events"]
        return queue

    async def decide(self, who: As, event_id: str, decision: str, content_hash: str, comment: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/events/{event_id}/approval", who, {},
                                {"decision": decision, "content_hash": content_hash, "comment": comment or None})

    async def cancel(self, who: As, event_id: str, comment: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/events/{event_id}/cancellation", who, {}, {"comment": comment or None})

    async def publish(self, who: As, event: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/events", who, {}, event)

    async def preview(self, who: As, event: dict[str, Any], audience: str, channel: str) -> dict[str, str]:
        parts: dict[str, str] = (await self._call("POST", "/v1/previews", who,
                                                  {"audience": audience, "channel": channel}, event))["parts"]
        return parts

    async def audiences(self, who: As, program: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/programs/{program}/audiences", who)

    async def drafts(self, who: As, program: str | None = None) -> list[dict[str, Any]]:
        drafts: list[dict[str, Any]] = (await self._call("GET", "/v1/drafts", who,
                                                         {"program": program} if program else {}))["drafts"]
        return drafts

    async def draft(self, who: As, draft_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/drafts/{draft_id}", who)

    async def save_draft(self, who: As, draft_id: str | None, version: int, program: str, event_type: str,
                         fields: dict[str, Any]) -> dict[str, Any]:
        """A new draft (no `draft_id`), or the draft changed from `version` (Refused 409 when one is newer)."""
        if draft_id is None:
            return await self._call("POST", "/v1/drafts", who, {}, {"program": program, "type": event_type,
                                                                  "fields": fields})
        return await self._call("PUT", f"/v1/drafts/{draft_id}", who, {}, {"version": version, "fields": fields})

    async def remove_draft(self, who: As, draft_id: str, version: int) -> None:
        await self._call("DELETE", f"/v1/drafts/{draft_id}", who, {"version": str(version)})

    async def redrive(self, who: As, letter_id: int) -> dict[str, Any]:
        return await self._call("POST", f"/v1/dead-letters/{letter_id}/redrive", who)

    async def check_directory(self, who: As, text: str) -> dict[str, Any]:
        """The report of what the directory file would change (nothing changes yet)."""
        return await self._call("POST", "/v1/directory/imports", who, csv=text)

    async def apply_directory(self, who: As, import_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/directory/imports/{import_id}/apply", who)

    async def undeliverable(self, who: As) -> list[dict[str, Any]]:
        """The people whose address takes no mail, and why (an admin of every programme)."""
        addresses: list[dict[str, Any]] = (await self._call("GET", "/v1/directory/undeliverable", who))["addresses"]
        return addresses

    async def audit(self, who: As, program: str, limit: int = 500) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self._call("GET", "/v1/audit", who,
                                                       {"program": program, "limit": str(limit)}))["rows"]
        return rows

    async def audit_csv(self, who: As, program: str) -> str:
        """The programme's whole register as CSV, as the gateway exports it."""
        headers = {"Authorization": f"Session {who.session}"}
        try:
            async with httpx.AsyncClient(base_url=self.base_url, transport=self.transport, timeout=120.0) as client:
                response = await client.get("/v1/audit", params={"program": program, "format": "csv"},
                                            headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise GatewayUnavailable(f"the gateway answered {response.status_code}")
        if response.status_code != 200:
            raise Refused(response.status_code, str(response.json().get("detail", "refused")))
        return response.text

    async def _call(self, method: str, path: str, who: As, params: dict[str, str] | None = None,
                    body: dict[str, Any] | None = None, csv: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Session {who.session}"}
        if who.csrf:
            headers["X-CSRF-Token"] = who.csrf
        try:
            async with httpx.AsyncClient(base_url=self.base_url, transport=self.transport, timeout=120.0) as client:
                if csv is not None:
                    response = await client.request(method, path, params=params or {}, content=csv.encode(),
                                                    headers={**headers, "Content-Type": "text/csv; charset=utf-8"})
                else:
                    response = await client.request(method, path, params=params or {}, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise GatewayUnavailable(f"the gateway answered {response.status_code}")
        if response.status_code == 204:
            return {}
        try:
            answer: dict[str, Any] = response.json()
        except ValueError as exc:
            raise GatewayUnavailable(f"the gateway answered {response.status_code} without JSON") from exc
        if response.status_code >= 400:
            raise Refused(response.status_code, str(answer.get("detail", "refused")), answer.get("errors"))
        return answer
