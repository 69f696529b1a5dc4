"""The gateway's OpenAPI document is valid, describes what the API does, and a client that knows nothing of
our code (Schemathesis) fuzzes the running API from it without one server error."""

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401 - registers the OpenAPI checks
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as CHECKS_REGISTRY
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection

from contracts.deliveries import DeliveryPlan, PublishIntranetItem
from contracts.directory import DirectoryApplied, DirectoryReport, UndeliverableAddress
from contracts.events import Event
from programs import load_programs
from services.common.migrations import upgrade
from services.common.runtime import Runtime
from services.embedded.broker import free_port
from services.gateway.main import GatewaySettings
from services.gateway.main import build as build_gateway
from services.gateway.store import MIGRATIONS
from services.intranet.main import IntranetSettings
from services.intranet.main import build as build_intranet
from services.intranet.store import MIGRATIONS as INTRANET_MIGRATIONS
from services.intranet.store import IntranetStore
from services.tailor.bounces import Bounces
from services.tailor.channels import preview
from services.tailor.directory import synthetic_directory
from services.tailor.imports import DirectoryImports, UnknownImport
from services.tailor.planning import plan_deliveries
from services.tailor.rendering import Renderer
from services.tailor.store import MIGRATIONS as TAILOR_MIGRATIONS
from services.tailor.store import TailorStore
from tests.conftest import PROGRAMS_DIR, TEMPLATES_DIR
from tests.integration.conftest import served

TOKEN = "contract-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway served over real HTTP (uvicorn), on SQLite; dry runs planned over a small directory.
    Accepted events stay in the outbox: no broker is needed, none is started."""
    data_dir: Path = tmp_path_factory.mktemp("gateway")
    port = free_port()
    settings = GatewaySettings(api_tokens=f"{TOKEN}=fvm|fvis:publisher+admin", data_dir=data_dir, database_url="", http_port=port,
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

    runtime = Runtime.create(settings, client_id="contract-test", service="gateway")
    # The directory desk is the tailor's own, over its tables beside the gateway's.
    imports = DirectoryImports(TailorStore(runtime.engine), {a for p in programs.values() for a in p.areas})

    async def check(text: str, author: str, _authorization: str) -> DirectoryReport:
        return await imports.check(text, author)

    async def apply(import_id: str, _authorization: str) -> DirectoryApplied | None:
        with contextlib.suppress(UnknownImport):
            return await imports.apply(import_id)
        return None

    bounces = Bounces(runtime.engine)

    async def undeliverable(_authorization: str) -> list[UndeliverableAddress]:
        return [UndeliverableAddress(id=i, name=n, email=e, reason=r) for i, n, e, r in await bounces.listing()]

    runtime.add(build_gateway(settings, runtime, planner=planner, previewer=previewer, directory=(check, apply),
                              undeliverable=undeliverable))
    asyncio.run(upgrade(runtime.engine, MIGRATIONS))
    asyncio.run(upgrade(runtime.engine, TAILOR_MIGRATIONS))
    with served(runtime.http_app(), port) as url:
        yield url


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
                                                      "status.update", "newsletter.issue", "correction", "retraction"}
    assert set(post["responses"]) == {"200", "202", "401", "403", "409", "413", "422", "503"}
    problem = post["responses"]["422"]["content"]["application/json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/ProblemBody"}
    status = openapi["paths"]["/v1/events/{event_id}"]["get"]["responses"]["200"]
    assert status["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EventStatus"}


#: Every operation of the public API; a test below fails when the document has one that is not fuzzed.
OPERATIONS = ("POST /v1/events", "POST /v1/previews", "GET /v1/events", "GET /v1/events/{event_id}",
              "GET /v1/programs/{program}/audiences",
              "GET /v1/dead-letters", "POST /v1/dead-letters/{letter_id}/redrive",
              "GET /v1/drafts", "POST /v1/drafts", "GET /v1/drafts/{draft_id}", "PUT /v1/drafts/{draft_id}",
              "DELETE /v1/drafts/{draft_id}", "POST /v1/directory/imports",
              "POST /v1/directory/imports/{import_id}/apply", "GET /v1/directory/undeliverable", "GET /v1/audit",
              "PUT /v1/events/{event_id}",
              "POST /v1/events/{event_id}/approval", "POST /v1/events/{event_id}/cancellation", "GET /v1/approvals")
#: Every check Schemathesis has: the document says what the API enforces and answers, not only "no 5xx".
CHECKS = CHECKS_REGISTRY.get_all()
assert len(CHECKS) >= 14, [c.__name__ for c in CHECKS]


#: Operations whose body is text whatever it holds (see FUZZ_CONFIG below).
UNTYPED_BODIES = {"POST /v1/directory/imports"}
#: Cases per operation and mode: the event union's bodies get the most; a query or a small body, fewer.
EXAMPLES = {"POST /v1/events": 150, "POST /v1/previews": 100, "POST /v1/drafts": 80, "PUT /v1/drafts/{draft_id}": 80}
#: A path and a few query parameters, or a body of a handful of fields, are covered well by fewer.
OTHER_EXAMPLES = 30


#: Where the document cannot say everything the API enforces, and why:
#: - a preview's target group must be one of the event's programme's (the body names the programme; a schema
#:   cannot relate the two), so a schema-valid group of the other programme is refused with 422;
#: - a directory file is text whatever bytes it holds (a CSV has no types): a body Schemathesis means as "not a
#:   string" still arrives as text, and the report refuses it row by row or whole, with 200 and the reasons
#:   (UNTYPED_BODIES: the check that such a body is refused is left out there);
#: - an event's acknowledgement deadline (`acknowledge_by`) is for must-know news only, and must come after the
#:   news goes out, within 90 days: the first relates two fields, the second relates a field to the clock, and
#:   a schema-valid event that breaks either is refused with 422 and the field's path;
#: - the intranet's pages are for people's browsers: a link with a parameter added on its way (a mail gateway,
#:   a campaign tag) still opens the page, so they ignore what they do not know, where the API refuses it.
FUZZ_CONFIG = SchemathesisConfig.from_str("""
[[operations]]
include-name = "POST /v1/previews"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-name = "POST /v1/events"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path-regex = "^/intranet/"
generation.allow-extra-parameters = false
""")


@pytest.fixture(scope="module")
def api_schema(gateway_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json", config=FUZZ_CONFIG)


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
        assert status.json()["status"] == "awaiting_approval"  # must-know: held for a second person

    call()


def test_every_documented_operation_is_fuzzed(api_schema: Any) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzzing_the_running_api_finds_no_server_error_and_no_undocumented_answer(
        api_schema: Any, label: str, mode: GenerationMode) -> None:
    fuzz(api_schema.find_operation_by_label(label), mode, EXAMPLES.get(label, OTHER_EXAMPLES), headers=AUTH)


def fuzz(operation: Any, mode: GenerationMode, examples: int, **call: Any) -> None:
    """Call the running service with cases generated from its document and run every check on each answer."""

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def one(case: Any) -> None:
        excluded = [negative_data_rejection] if operation.label in UNTYPED_BODIES else []
        case.call_and_validate(checks=CHECKS, excluded_checks=excluded, **call)

    one()


INTRANET_OPERATIONS = ("GET /intranet/", "GET /intranet/items/{event_id}", "GET /intranet/status",
                       "GET /intranet/feed.atom")


@pytest.fixture(scope="module")
def intranet_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The intranet service alone over real HTTP (uvicorn), on SQLite, with a public and an internal item."""
    data_dir: Path = tmp_path_factory.mktemp("intranet")
    port = free_port()
    settings = IntranetSettings(data_dir=data_dir, database_url="", http_port=port, programs_dir=PROGRAMS_DIR,
                                kafka_bootstrap_servers="unused.invalid:9092", templates_dir=TEMPLATES_DIR)
    runtime = Runtime.create(settings, client_id="contract-test", service="intranet")
    runtime.add(build_intranet(settings, runtime, embedded=True))

    async def prepare() -> None:
        await upgrade(runtime.engine, INTRANET_MIGRATIONS)
        store = IntranetStore(runtime.engine)
        for sensitivity in ("public", "internal"):
            await store.save(PublishIntranetItem(
                event_id=uuid4(), program="fvm", audience_id="intranet", event_type="status.update",
                title="Läget", summary="Enligt plan.", html_body="<p>Enligt plan.</p>", importance="awareness",
                sensitivity=sensitivity, occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
                published_at=datetime(2026, 11, 1, tzinfo=UTC), audiences=(), phase="Införande"))

    asyncio.run(prepare())
    with served(runtime.http_app(), port) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", config=FUZZ_CONFIG).include(path_regex="^/intranet/")


def test_every_intranet_page_is_fuzzed(intranet_schema: Any) -> None:
    labels = {result.ok().label for result in intranet_schema.get_all_operations()}
    assert labels == set(INTRANET_OPERATIONS)


#: Every string is an item's id (an unknown one is 404), so an item page has no invalid input to generate.
INTRANET_FUZZ = [(label, mode) for label in INTRANET_OPERATIONS for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                 if not (label == "GET /intranet/items/{event_id}" and mode is GenerationMode.NEGATIVE)]


@pytest.mark.parametrize(("label", "mode"), INTRANET_FUZZ, ids=[f"{label}-{mode.value}" for label, mode in INTRANET_FUZZ])
def test_fuzzing_the_intranet_pages_finds_every_answer_documented(intranet_schema: Any, label: str,
                                                                  mode: GenerationMode) -> None:
    """Statuses (404 for an unknown programme or item, 303 to sign in) and content types (the Atom feed's)
    as the document says."""
    fuzz(intranet_schema.find_operation_by_label(label), mode, 50, allow_redirects=False)
