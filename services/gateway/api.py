"""The gateway's HTTP API: POST /v1/events, GET /v1/events/{id}, GET /v1/programs/{program}/audiences."""

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError

from contracts import topics
from contracts.deliveries import DeliveryPlan
from contracts.events import Event, parse_event
from programs import Program
from services.common.problems import Problem
from services.gateway.auth import Principal, TokenAuthority
from services.gateway.status import event_status
from services.gateway.store import DuplicateEvent, GatewayStore

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
ACCEPTED = Counter("budkavle_events_accepted_total", "Events accepted by the gateway", ["program", "type"])
REJECTED = Counter("budkavle_events_rejected_total", "Event requests refused by the gateway", ["status"])

Planner = Callable[[Event], Awaitable[DeliveryPlan]]


class PlannerUnavailable(Exception):
    """The tailor, which owns the directory, could not be asked for a plan."""


def _problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> Problem:
    REJECTED.labels(str(status)).inc()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Problem(status, detail, errors, headers)


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"path": ".".join(str(p) for p in e["loc"]) or "<root>", "reason": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)]


def build_http(store: GatewayStore, authority: TokenAuthority, programs: Mapping[str, Program],
               planner: Planner, notify_relay: Callable[[], None]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["events"])

    def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        found = authority.authenticate(authorization)
        if found is None:
            raise _problem(401, "missing or unknown bearer token")
        return found

    Caller = Annotated[Principal, Depends(principal)]

    @router.post("/events", status_code=202)
    async def post_event(request: Request, caller: Caller, dry_run: bool = Query(False),
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            raise _problem(413, f"request body over {MAX_BODY // 1024} KiB")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise _problem(413, f"request body over {MAX_BODY // 1024} KiB")
        raw = bytes(body)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _problem(422, "body is not valid JSON", [{"path": "<root>", "reason": str(exc)}]) from exc
        if not isinstance(data, dict):
            raise _problem(422, "body must be a JSON object", [{"path": "<root>", "reason": "not an object"}])
        data.pop("published_at", None)  # set by the gateway, never by the publisher
        try:
            event = parse_event(data)
        except ValidationError as exc:
            raise _problem(422, "invalid event", _errors(exc)) from exc
        if event.program not in caller.programs:
            raise _problem(403, f"token may not publish for programme {event.program!r}")
        program = programs.get(event.program)
        if program is None:
            raise _problem(422, "invalid event", [{"path": "program", "reason": f"unknown programme {event.program!r}"}])
        unknown = [(i, a) for i, a in enumerate(event.audiences or ()) if program.audience(a) is None]
        if unknown:
            raise _problem(422, "invalid event", [{"path": f"audiences.{i}", "reason": f"unknown target group {a!r}"}
                                                  for i, a in unknown])
        if dry_run:
            try:
                plan = await planner(event)
            except PlannerUnavailable as exc:
                raise _problem(503, f"cannot plan now: {exc}") from exc
            return JSONResponse({"dry_run": True, "plan": plan.model_dump(mode="json")}, status_code=200)

        request_hash = hashlib.sha256(raw).hexdigest()
        scope = f"{caller.token_id}:{idempotency_key}" if idempotency_key else None
        if scope:
            first = await store.by_idempotency(scope)
            if first is not None:
                if first.request_hash != request_hash:
                    raise _problem(409, "Idempotency-Key was used before with a different request")
                return _accepted(request, first.event_id)
        event = event.model_copy(update={"published_at": datetime.now(UTC)})
        try:
            await store.accept(event, topics.event_topic(event.type), scope, request_hash)
        except DuplicateEvent:
            if scope and (first := await store.by_idempotency(scope)) is not None:
                return _accepted(request, first.event_id)  # a concurrent retry won the race
            raise _problem(409, f"event {event.event_id} exists already") from None
        notify_relay()
        ACCEPTED.labels(event.program, event.type).inc()
        log.info("event accepted", extra={"event_id": str(event.event_id), "program": event.program,
                                          "type": event.type})
        return _accepted(request, str(event.event_id))

    @router.get("/events/{event_id}")
    async def get_event(event_id: UUID, caller: Caller) -> dict[str, Any]:
        stored = await store.get(event_id)
        if stored is None or stored.program not in caller.programs:
            raise _problem(404, "no such event")
        plan = await store.plan_of(event_id)
        status = event_status(plan, await store.outcome_counts(event_id))
        return {
            "event_id": stored.event_id,
            "program": stored.program,
            "type": stored.type,
            "title": stored.body.get("payload", {}).get("title"),
            "accepted_at": stored.accepted_at.isoformat(),
            "embargo_until": stored.body.get("embargo_until"),
            **status,
            "plan": plan[1] if plan else None,
            "failures": await store.failure_reasons(event_id),
        }

    @router.get("/programs/{program}/audiences")
    async def audiences(program: str, caller: Caller) -> dict[str, Any]:
        if program not in caller.programs:
            raise _problem(403, f"token may not read programme {program!r}")
        config = programs.get(program)
        if config is None:
            raise _problem(404, f"unknown programme {program!r}")
        return {"program": program, "name": config.name, "audiences": [
            a.model_dump(mode="json", include={"id", "name", "tier", "external", "cleared_for_confidential",
                                               "tone", "channels", "digest", "follows", "area_scoped"})
            for a in config.audiences]}

    return router


def _accepted(request: Request, event_id: str) -> JSONResponse:
    url = str(request.url_for("get_event", event_id=event_id))
    return JSONResponse({"event_id": event_id, "status_url": url}, status_code=202)
