"""`python -m services.embedded.migrations revision <service> -m "what changed"`: autogenerate the next
revision of one service's tables (every service's history is listed in `platform.MIGRATIONS`)."""

import argparse
import asyncio
import sys

from services.common.migrations import autogenerate_revision
from services.embedded.platform import MIGRATIONS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.embedded.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="autogenerate the next revision of a service's tables")
    rev.add_argument("service", choices=sorted(MIGRATIONS))
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    asyncio.run(autogenerate_revision(MIGRATIONS[args.service], args.message))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
