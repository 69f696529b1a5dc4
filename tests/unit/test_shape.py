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
