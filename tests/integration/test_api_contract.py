"""The gateway's OpenAPI document is valid, describes what the API does, and a client that knows nothing of
our code (Schemathesis) fuzzes the running API from it without one server error."""

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contracts.deliveries import DeliveryPlan
from contracts.events import Event
from programs import load_programs
from services.common.migrations import upgrade
from services.common.runtime import Runtime
from services.embedded.broker import free_port
from services.gateway.main import GatewaySettings
from services.gateway.main import build as build_gateway
from services.gateway.store import MIGRATIONS
from services.tailor.channels import preview
from services.tailor.directory import synthetic_directory
from services.tailor.planning import plan_deliveries
from services.tailor.rendering import Renderer
from tests.conftest import PROGRAMS_DIR, TEMPLATES_DIR

TOKEN = "contract-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway served over real HTTP (uvicorn), on SQLite; dry runs planned over a small directory.
    Accepted events stay in the outbox: no broker is needed, none is started."""
    data_dir: Path = tmp_path_factory.mktemp("gateway")
    port = free_port()
    settings = GatewaySettings(api_tokens=f"{TOKEN}=fvm|fvis", data_dir=data_dir, database_url="", http_port=port,
                               kafka_bootstrap_servers="unused.invalid:9092", programs_dir=PROGRAMS_DIR,
                               templates_dir=TEMPLATES_DIR)
    programs = load_programs(PROGRAMS_DIR)
    municipalities = [(m.name, m.area, frozenset(m.options)) for p in programs.values() for m in p.municipalities]
    directory = list(synthetic_directory(municipalities, staff_scale=0.01))

    async def planner(event: Event, _authorization: str) -> DeliveryPlan:
        return plan_deliveries(event, programs[event.program], directory).contract

    renderer = Renderer(TEMPLATES_DIR, "http://contract.test")

    async def previewer(event: Event, audience: str, channel: str, _authorization: str) -> dict[str, str]:
        group = programs[event.program].audience(audience)
        assert group is not None  # the gateway checked it
        return preview(event, programs[event.program], group, channel, renderer)

    runtime = Runtime.create(settings, client_id="contract-test")
    runtime.add(build_gateway(settings, runtime, planner=planner, previewer=previewer))
    asyncio.run(upgrade(runtime.engine, MIGRATIONS))
    server = uvicorn.Server(uvicorn.Config(runtime.http_app(), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def openapi(gateway_url: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{gateway_url}/openapi.json").json()
    return document


def test_the_openapi_document_is_valid(openapi: dict[str, Any]) -> None:
    validate(openapi)


def test_post_event_documents_the_event_union_and_every_answer(openapi: dict[str, Any]) -> None:
    post = openapi["paths"]["/v1/events"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Event"}
    union = openapi["components"]["schemas"]["Event"]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == {"steering.decision", "design.decision", "golive.milestone",
                                                      "status.update", "newsletter.issue"}
    assert set(post["responses"]) == {"200", "202", "401", "403", "409", "413", "422", "503"}
    problem = post["responses"]["422"]["content"]["application/json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/ProblemBody"}
    status = openapi["paths"]["/v1/events/{event_id}"]["get"]["responses"]["200"]
    assert status["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EventStatus"}


#: Every operation of the public API; a test below fails when the document has one that is not fuzzed.
OPERATIONS = ("POST /v1/events", "POST /v1/previews", "GET /v1/events/{event_id}", "GET /v1/programs/{program}/audiences",
              "GET /v1/dead-letters", "POST /v1/dead-letters/{letter_id}/redrive")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(gateway_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")


def test_the_documented_example_event_is_accepted_and_its_status_documented(api_schema: Any,
                                                                            gateway_url: str) -> None:
    post = api_schema.find_operation_by_label("POST /v1/events")
    [strategy] = post.get_strategies_from_examples()

    @given(strategy)
    @settings(max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case: Any) -> None:
        accepted = case.call_and_validate(headers=AUTH, checks=CHECKS)
        assert accepted.status_code == 202
        dry_run = case.call_and_validate(headers=AUTH, checks=CHECKS, params={"dry_run": "true"})
        assert dry_run.status_code == 200 and dry_run.json()["plan"]["groups"][0]["recipients"] == 9
        status = httpx.get(accepted.json()["status_url"], headers=AUTH)
        api_schema.find_operation_by_label("GET /v1/events/{event_id}").validate_response(status)
        assert status.json()["status"] == "accepted"

    call()


def test_every_documented_operation_is_fuzzed(api_schema: Any) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzzing_the_running_api_finds_no_server_error_and_no_undocumented_answer(
        api_schema: Any, label: str, mode: GenerationMode) -> None:
    operation = api_schema.find_operation_by_label(label)

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    call()
