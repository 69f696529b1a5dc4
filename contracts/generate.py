"""Generate the committed JSON Schemas and the AsyncAPI document from the code.

`python -m contracts.generate` writes them; `python -m contracts.generate --check` fails when the
committed files drift from the code (the test suite runs the check).
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts import topics
from contracts.deliveries import (
    DeadLetter,
    DeliveryOutcome,
    EventPlanned,
    PublishIntranetItem,
    SendEmail,
    SendTeamsCard,
)
from contracts.events import EVENT_ADAPTER

HERE = Path(__file__).parent
SCHEMAS = HERE / "schemas"
ASYNCAPI = HERE / "asyncapi.json"

#: What travels on each topic.
TOPIC_MODELS: dict[str, type[BaseModel] | None] = {
    **{t: None for t in topics.EVENT_TOPICS.values()},  # the event union, below
    topics.EMAIL_DELIVERY_REQUESTED: SendEmail,
    topics.TEAMS_DELIVERY_REQUESTED: SendTeamsCard,
    topics.INTRANET_DELIVERY_REQUESTED: PublishIntranetItem,
    topics.EVENT_PLANNED: EventPlanned,
    topics.DELIVERY_OUTCOMES: DeliveryOutcome,
    topics.DEAD_LETTER: DeadLetter,
}


def schema_for(topic: str) -> dict[str, Any]:
    model = TOPIC_MODELS[topic]
    return EVENT_ADAPTER.json_schema() if model is None else model.model_json_schema()


def json_schemas() -> dict[str, dict[str, Any]]:
    out = {"event.v1.json": EVENT_ADAPTER.json_schema()}
    for model in (SendEmail, SendTeamsCard, PublishIntranetItem, EventPlanned, DeliveryOutcome, DeadLetter):
        out[f"{model.__name__}.v1.json"] = model.model_json_schema()
    return out


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the whole platform, from its FastStream routers."""
    from faststream.specification import AsyncAPI

    defaults = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
                "SMTP_URL": "smtp://mail:25", "BUDKAVLE_API_TOKENS": "documentation-only=fvm|fvis"}
    for key, value in defaults.items():
        os.environ[key] = value  # building never connects; these only satisfy the settings
    from services.embedded.platform import build_platform

    runtime = build_platform(Path("var"))
    spec = AsyncAPI(runtime.broker, title="Budkavle", version="1", schema_version="3.0.0",
                    description="Budkavle's Kafka topics and the contracts on them.")
    doc: dict[str, Any] = json.loads(spec.to_specification().to_json())
    doc["servers"] = {"production": {"host": "kafka:9092", "protocol": "kafka",
                                     "description": "KAFKA_BOOTSTRAP_SERVERS"}}
    # Subscribers validate their bodies themselves (so that bad ones reach the dead-letter topic);
    # attach each topic's contract schema to its messages here.
    components = doc.setdefault("components", {})
    messages = components.setdefault("messages", {})
    for channel in doc.get("channels", {}).values():
        address = channel.get("address", "")
        for ref in channel.get("messages", {}).values():
            name = ref["$ref"].rsplit("/", 1)[-1]
            if address in TOPIC_MODELS and name in messages:
                messages[name]["payload"] = schema_for(address)
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
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
