"""The platform's shape holds as it grows: every service folder is under the import contracts."""

import tomllib

from tests.conftest import ROOT

#: Folders under services/ that are not services: the shared base, the composition of all services, the bench.
NOT_SERVICES = {"common", "embedded", "bench"}


def test_every_service_folder_is_in_the_independence_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [independence] = [c for c in config if c["id"] == "services-independent"]
    services = {p.name for p in (ROOT / "services").iterdir()
                if p.is_dir() and (p / "__init__.py").is_file() and p.name not in NOT_SERVICES}
    assert services == {m.removeprefix("services.") for m in independence["modules"]}
    [shared] = [c for c in config if c["id"] == "shared-below-services"]
    assert {f"services.{s}" for s in services} <= set(shared["forbidden_modules"])
