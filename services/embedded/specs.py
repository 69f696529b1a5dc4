"""Generate the committed JSON Schemas (`contracts/schemas/`) and the AsyncAPI document
(`contracts/asyncapi.json`) from the code.

`python -m services.embedded.specs` writes them; `--check` fails when the committed files drift from the
code (the test suite runs the check). The AsyncAPI part is built from every service's FastStream router,
which is why it lives here, beside the composition of all services, and not in `contracts/`.
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import contracts
from contracts import topics
from contracts.channels import CHANNELS
from contracts.deliveries import (
    AddressBounced,
    DeadLetter,
    DeliveriesScheduled,
    DeliveryOutcomes,
    DigestSent,
    EventPlanned,
    FollowUpSent,
)
from contracts.events import event_adapter, event_topics
from contracts.feedback import Acknowledged, FeedbackGiven, ItemRead
from contracts.lifecycle import EventCancelled
from contracts.people import SessionEnded
from contracts.preferences import PreferencesChanged
from contracts.schedule import SCHEDULE_DUE_ADAPTER, SCHEDULE_DUE_VERSION, ScheduleDueV1
from services.embedded.platform import PlatformSettings, build_platform

CONTRACTS = Path(contracts.__file__).parent
SCHEMAS = CONTRACTS / "schemas"
ASYNCAPI = CONTRACTS / "asyncapi.json"


def topic_contracts() -> dict[str, tuple[str, dict[str, Any]]]:
    """What travels on each topic: the name of its schema file (`<contract>.v<version>.json`) and its JSON
    Schema."""

    def model(contract: type[BaseModel], version: int | None = None) -> tuple[str, dict[str, Any]]:
        return f"{contract.__name__}.v{version or getattr(contract, 'version', 1)}.json", contract.model_json_schema()

    return {
        **{t: ("event.v1.json", event_adapter().json_schema()) for t in event_topics()},
        **{spec.topic: model(spec.command) for spec in CHANNELS.values()},
        topics.EVENT_CANCELLED: model(EventCancelled),
        topics.EVENT_PLANNED: model(EventPlanned),
        topics.DELIVERIES_SCHEDULED: model(DeliveriesScheduled),
        topics.FOLLOW_UP_SENT: model(FollowUpSent),
        topics.ADDRESS_BOUNCED: model(AddressBounced),
        topics.DIGEST_SENT: model(DigestSent),
        topics.DELIVERY_OUTCOMES: model(DeliveryOutcomes),
        topics.SCHEDULE_DUE: (f"ScheduleDue.v{SCHEDULE_DUE_VERSION}.json", SCHEDULE_DUE_ADAPTER.json_schema()),
        topics.SCHEDULE_DUE_V1: ("ScheduleDue.v1.json", ScheduleDueV1.model_json_schema()),
        topics.PREFERENCES_CHANGED: model(PreferencesChanged),
        topics.FEEDBACK_GIVEN: model(FeedbackGiven),
        topics.ITEM_READ: model(ItemRead),
        topics.ACKNOWLEDGED: model(Acknowledged),
        topics.SESSION_ENDED: model(SessionEnded),
        topics.DEAD_LETTER: model(DeadLetter),
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    return dict(topic_contracts().values())


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the whole platform, from its FastStream routers."""
    from faststream.specification import AsyncAPI

    # Building connects to nothing; these values only satisfy the services' settings.
    settings = PlatformSettings.load(
        {"kafka_bootstrap_servers": "kafka:9092", "database_url": "sqlite+aiosqlite:///:memory:"},
        gateway={"api_tokens": "documentation-only=fvm|fvis"}, email={"smtp_url": "smtp://mail:25"})
    runtime = build_platform(settings)
    spec = AsyncAPI(runtime.broker, title="Budkavle", version="1", schema_version="3.0.0",
                    description="Budkavle's Kafka topics and the contracts on them.")
    doc: dict[str, Any] = json.loads(spec.to_specification().to_json())
    doc["servers"] = {"production": {"host": "kafka:9092", "protocol": "kafka",
                                     "description": "KAFKA_BOOTSTRAP_SERVERS"}}
    # Subscribers validate their bodies themselves (so that bad ones reach the dead-letter topic);
    # attach each topic's contract schema to its messages here.
    contracts_on = topic_contracts()
    messages = doc.setdefault("components", {}).setdefault("messages", {})
    for channel in doc.get("channels", {}).values():
        address = channel.get("address", "")
        for ref in channel.get("messages", {}).values():
            name = ref["$ref"].rsplit("/", 1)[-1]
            if address in contracts_on and name in messages:
                messages[name]["payload"] = contracts_on[address][1]
    return doc


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    files = {SCHEMAS / name: _dump(schema) for name, schema in json_schemas().items()}
    files[ASYNCAPI] = _dump(asyncapi())
    return files


def main(argv: list[str]) -> int:
    files = expected_files()
    if "--check" in argv:
        drifted = [str(p) for p, text in files.items() if not p.is_file() or p.read_text() != text]
        stale = [str(p) for p in SCHEMAS.glob("*.json") if p not in files]
        if drifted or stale:
            print("contracts drifted from the code; run `make schemas`:", *drifted, *stale, sep="\n  ")
            return 1
        return 0
    SCHEMAS.mkdir(exist_ok=True)
    for old in SCHEMAS.glob("*.json"):
        if old not in files:
            old.unlink()
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
