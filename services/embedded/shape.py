"""The platform's import contracts, from the one list of services the embedded platform composes
(`services.embedded.platform.SERVICES`): `make lint` writes them to `.importlinter` and import-linter checks
the import graph against them; the shape test reads the same list.

The rules, whatever services there are:
- no service imports another (services meet only on the bus);
- contracts, programs and services.common import no service, nor the composition;
- contracts import neither programme configuration nor any service code;
- layers: the CLI above the bench above the composition above the services above the shared base.

`python -m services.embedded.shape .importlinter` writes the file.
"""

import sys
from pathlib import Path

from services.embedded.platform import SERVICE_NAMES

#: Packages under services/ that are not services: the shared base and what composes the services.
COMPOSITION = ("services.embedded", "services.cli", "services.bench")


def _lines(values: tuple[str, ...] | list[str]) -> str:
    return "".join(f"\n    {v}" for v in values)


def import_contracts(names: tuple[str, ...] = SERVICE_NAMES) -> str:
    """import-linter's configuration (INI) for these services."""
    services = tuple(f"services.{name}" for name in names)
    return f"""# Written by `python -m services.embedded.shape` from services.embedded.platform.SERVICES; do not edit.
[importlinter]
root_packages ={_lines(["services", "contracts", "programs"])}

[importlinter:contract:services-independent]
name = No service imports another service
type = independence
modules ={_lines(services)}

[importlinter:contract:shared-below-services]
name = contracts, programs and services.common import no service
type = forbidden
source_modules ={_lines(["contracts", "programs", "services.common"])}
forbidden_modules ={_lines([*services, *COMPOSITION])}

[importlinter:contract:contracts-lowest]
name = contracts import neither programme configuration nor any service code
type = forbidden
source_modules ={_lines(["contracts"])}
forbidden_modules ={_lines(["programs", "services"])}

[importlinter:contract:layers]
name = Composition above services above the shared base
type = layers
layers ={_lines(["services.cli", "services.bench", "services.embedded", " | ".join(services), "services.common",
                 "programs", "contracts"])}
"""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m services.embedded.shape <file>", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(import_contracts())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
