"""Admission: may this request body become an accepted event? Pure — no I/O; the time comes in.

Every refusal is a `Problem` with the status the API answers and, for invalid input, each invalid
field's path and reason.
"""

import hashlib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from contracts.deliveries import COMMAND_OVERHEAD_BYTES, MAX_BUS_MESSAGE_BYTES
from contracts.events import MAX_EVENT_BYTES, Event, GoLiveMilestoneReached, parse_event
from programs import Program
from services.common.auth import Principal, TokenRole
from services.common.problems import Problem, field_problems

MAX_BODY = MAX_EVENT_BYTES
#: The longest an acknowledgement may be asked for: reminders beyond it would nag, not inform.
MAX_ACKNOWLEDGEMENT = timedelta(days=90)
MAX_EMBARGO = timedelta(days=366)


#: A publisher's first event, as the OpenAPI document shows it (and as Schemathesis replays it).
EXAMPLE_EVENT = {
    "type": "steering.decision", "program": "fvm", "publisher": "FVM programkontor", "importance": "must_know",
    "sensitivity": "internal", "audiences": ["politisk-styrgrupp"], "occurred_at": "2022-05-17T15:00:00+02:00",
    "payload": {"committee": "Regionstyrelsen", "title": "Ny tidplan för införandet av Millennium",
                "decision_text": "Regionstyrelsen godkänner den reviderade tidplanen för FVM.",
                "effective_date": "2022-05-17"}}
EVENT_BODY = {"requestBody": {
    "required": True, "description": f"one event, at most {MAX_BODY // 1024} KiB",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"},
                                     "examples": {"steering-decision": {"value": EXAMPLE_EVENT}}}}}}


@dataclass(frozen=True)
class Admitted:
    event: Event
    request_hash: str  # what an Idempotency-Key is held to: the same key must come with the same body


def admit(body: bytes, caller: Principal, programs: Mapping[str, Program], now: datetime) -> Admitted:
    """The event in `body`, or the Problem that refuses it (422 invalid, 403 programme not in the token)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(422, "body is not valid JSON", [{"path": "<root>", "reason": str(exc)}]) from exc
    except RecursionError:
        raise Problem(422, "body is not valid JSON", [{"path": "<root>", "reason": "nested too deeply"}]) from None
    if not isinstance(data, dict):
        raise Problem(422, "body must be a JSON object", [{"path": "<root>", "reason": "not an object"}])
    data.pop("published_at", None)  # set by the gateway, never by the publisher
    if caller.person is not None:
        data["publisher"] = caller.person.sub  # who publishes is who is signed in, whatever the form said
    try:
        event = parse_event(data)
    except ValidationError as exc:
        raise Problem(422, "invalid event", field_problems(exc)) from exc
    if not caller.may_in(event.program, TokenRole.PUBLISHER):
        who = "you may" if caller.person is not None else "token may"
        raise Problem(403, f"{who} not publish for programme {event.program!r}")
    program = programs.get(event.program)
    if program is None:
        raise Problem(422, "invalid event", [{"path": "program", "reason": f"unknown programme {event.program!r}"}])
    errors = against_programme(event, program, now)
    if errors:
        raise Problem(422, "invalid event", errors)
    return Admitted(event, hashlib.sha256(body).hexdigest())


def against_programme(event: Event, program: Program, now: datetime) -> list[dict[str, str]]:
    """What the schema cannot know: the programme's target groups and areas, and a sane embargo."""
    errors = [{"path": f"audiences.{i}", "reason": f"unknown target group {a!r}"}
              for i, a in enumerate(event.audiences or ()) if program.audience(a) is None]
    areas = ", ".join(program.areas)
    if program.areas:
        errors += [{"path": f"regions.{i}", "reason": f"programme {program.program!r} has no area {r!r} (it has {areas})"}
                   for i, r in enumerate(event.regions or ()) if r not in program.areas]
        if isinstance(event, GoLiveMilestoneReached) and event.payload.area not in program.areas:
            errors.append({"path": "payload.area",
                           "reason": f"programme {program.program!r} has no area {event.payload.area!r} (it has {areas})"})
    size, room = rendered_size(event), MAX_BUS_MESSAGE_BYTES - COMMAND_OVERHEAD_BYTES
    if size > room:
        errors.append({"path": "payload", "reason": (
            f"too large once rendered: about {size // 1024} KiB, and a message carries at most {room // 1024} KiB "
            "of text (characters such as & and < take up to five times their room in HTML); shorten it or split it "
            "in two")})
    if event.embargo_until is not None and event.embargo_until > now + MAX_EMBARGO:
        errors.append({"path": "embargo_until", "reason": "an embargo may reach at most a year ahead"})
    send_at = getattr(event.payload, "send_at", None)
    if send_at is not None and send_at > now + MAX_EMBARGO:
        errors.append({"path": "payload.send_at", "reason": "a send time may be at most a year ahead"})
    if event.acknowledge_by is not None:
        goes = max(t for t in (now, event.embargo_until, send_at) if t is not None)
        if event.acknowledge_by <= goes:
            errors.append({"path": "acknowledge_by", "reason": "the deadline to acknowledge must come after the "
                                                                "message goes out"})
        elif event.acknowledge_by > goes + MAX_ACKNOWLEDGEMENT:
            errors.append({"path": "acknowledge_by", "reason": "the deadline to acknowledge may be at most 90 days "
                                                                "after the message goes out"})
    return errors


def rendered_size(event: Event) -> int:
    """An upper bound of the text the largest command of `event` carries (an email: each text of the payload
    in its HTML twice at most, escaped, and once in its plain text, each as a JSON string). What does not fit
    on the bus must be refused here: accepted, it could never be delivered."""
    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list | tuple):
            return [s for v in value for s in strings(v)]
        return []

    def as_json(text: str) -> int:
        return len(json.dumps(text, ensure_ascii=False).encode())

    return sum(2 * as_json(html.escape(s)) + as_json(s) for s in strings(event.payload.model_dump(mode="json")))


def send_time_notice(event: Event, now: datetime) -> str | None:
    """A newsletter whose send time has passed is sent at once; the publisher is told so."""
    send_at = getattr(event.payload, "send_at", None)
    if send_at is not None and send_at <= now:
        return f"send_at {send_at.isoformat()} has passed: the newsletter is sent now"
    return None
