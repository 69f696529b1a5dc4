"""Sample events of every registered type, used to check every template at start-up, by `budkavle preview`
and by tests: each type's samples (contracts.events.EventType.samples) in one envelope. The built-in types have
two each, one with every optional field filled and one with none, so that a template that reads a field that
may be missing fails at start-up rather than at send time."""

from datetime import UTC, datetime

from contracts.events import EVENT_TYPES, Event, parse_event


def sample_events(program: str) -> list[Event]:
    envelope = {"program": program, "publisher": "budkavle-samples", "importance": "must_know",
                "sensitivity": "internal",
                "occurred_at": datetime(2022, 5, 17, 10, 0, tzinfo=UTC).isoformat()}
    return [parse_event({**envelope, "type": name, "payload": payload})
            for name, t in EVENT_TYPES.items() for payload in t.samples]
