"""Admission: may this request body become an accepted event? Pure — no I/O, no clock.

Every refusal is a `Problem` with the status the API answers and, for invalid input, each invalid
field's path and reason.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from contracts.events import Event, parse_event
from programs import Program
from services.common.problems import Problem, field_problems
from services.gateway.auth import Principal

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class Admitted:
    event: Event
    request_hash: str  # what an Idempotency-Key is held to: the same key must come with the same body


def admit(body: bytes, caller: Principal, programs: Mapping[str, Program]) -> Admitted:
    """The event in `body`, or the Problem that refuses it (422 invalid, 403 programme not in the token)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(422, "body is not valid JSON", [{"path": "<root>", "reason": str(exc)}]) from exc
    if not isinstance(data, dict):
        raise Problem(422, "body must be a JSON object", [{"path": "<root>", "reason": "not an object"}])
    data.pop("published_at", None)  # set by the gateway, never by the publisher
    try:
        event = parse_event(data)
    except ValidationError as exc:
        raise Problem(422, "invalid event", field_problems(exc)) from exc
    if event.program not in caller.programs:
        raise Problem(403, f"token may not publish for programme {event.program!r}")
    program = programs.get(event.program)
    if program is None:
        raise Problem(422, "invalid event", [{"path": "program", "reason": f"unknown programme {event.program!r}"}])
    unknown = [(i, a) for i, a in enumerate(event.audiences or ()) if program.audience(a) is None]
    if unknown:
        raise Problem(422, "invalid event", [{"path": f"audiences.{i}", "reason": f"unknown target group {a!r}"}
                                             for i, a in unknown])
    return Admitted(event, hashlib.sha256(body).hexdigest())
