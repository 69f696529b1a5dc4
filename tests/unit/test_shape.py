"""The platform's shape holds as it grows: every service folder is in the one list of services the embedded
platform composes from, and the import contracts `make lint` checks are written from that same list."""

import configparser

from services.embedded.platform import SERVICE_NAMES, SERVICES
from services.embedded.shape import COMPOSITION, import_contracts
from tests.conftest import ROOT

#: Folders under services/ that are not services: the shared base, the composition of all services, the bench.
NOT_SERVICES = {"common", "embedded", "bench"}


def test_every_service_folder_is_in_the_one_list_and_nothing_else_is() -> None:
    folders = {p.name for p in (ROOT / "services").iterdir()
               if p.is_dir() and (p / "__init__.py").is_file() and p.name not in NOT_SERVICES}
    assert folders == set(SERVICE_NAMES) and len(SERVICE_NAMES) == len(SERVICES)


def test_the_import_contracts_name_every_service_of_the_list() -> None:
    config = configparser.ConfigParser()
    config.read_string(import_contracts())
    services = {f"services.{name}" for name in SERVICE_NAMES}
    assert set(config["importlinter:contract:services-independent"]["modules"].split()) == services
    forbidden = set(config["importlinter:contract:shared-below-services"]["forbidden_modules"].split())
    assert forbidden == services | set(COMPOSITION)
    layers = [layer.strip() for layer in config["importlinter:contract:layers"]["layers"].strip().splitlines()]
    assert set(layers[3].split(" | ")) == services and layers[:3] == ["services.cli", "services.bench",
                                                                       "services.embedded"]


def test_a_new_service_in_the_list_would_be_bound_by_every_contract() -> None:
    config = configparser.ConfigParser()
    config.read_string(import_contracts((*SERVICE_NAMES, "sms")))
    assert "services.sms" in config["importlinter:contract:services-independent"]["modules"].split()
    assert "services.sms" in config["importlinter:contract:shared-below-services"]["forbidden_modules"].split()


def test_the_platform_subscribes_exactly_the_declared_subscriptions_through_the_one_helper() -> None:
    """Each consumer group is declared once (contracts/subscriptions.py) and built by the one helper: no
    handlers.py lays its own subscriber, decodes, dead-letters or bounds failures by hand."""
    from contracts.subscriptions import SUBSCRIPTIONS
    from services.embedded.platform import PlatformSettings, build_platform

    settings = PlatformSettings.load({"kafka_bootstrap_servers": "kafka:9092",
                                      "database_url": "sqlite+aiosqlite:///:memory:"},
                                     gateway={"api_tokens": "shape-test-token=fvm"}, email={"smtp_url": "smtp://mail:25"})
    built = {s.group_id: sorted(t.name for t in s.topics) for s in build_platform(settings).broker.subscribers}
    assert built == {s.group: sorted(s.topics_now()) for s in SUBSCRIPTIONS}
    for handlers in (ROOT / "services").glob("*/handlers.py"):
        text = handlers.read_text()
        for by_hand in (".subscriber(", "dead_letter(", "decode", "bounded_failures", "validate_json"):
            assert by_hand not in text, f"{handlers.relative_to(ROOT)} does {by_hand} by hand"


def test_every_service_that_runs_apart_has_its_own_entry_with_the_platforms_settings() -> None:
    import importlib

    from services.embedded.apart import APART

    apart = {s.name: s for s in SERVICES if s.runs_apart}
    assert set(APART) == set(apart) and apart
    for name, (module, settings_class) in APART.items():
        assert getattr(importlib.import_module(module), settings_class) is apart[name].settings
