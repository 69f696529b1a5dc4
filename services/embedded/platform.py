"""Every service composed on one runtime: what `budkavle up` runs, and what the end-to-end tests start."""

import json
import logging
import os
import secrets
from pathlib import Path

from services.common.runtime import Runtime
from services.email.main import EmailSettings
from services.email.main import build as build_email
from services.gateway.main import GatewaySettings
from services.gateway.main import build as build_gateway
from services.intranet.main import IntranetSettings
from services.intranet.main import build as build_intranet
from services.tailor.directory import synthetic_directory
from services.tailor.main import TailorSettings
from services.tailor.main import build as build_tailor
from services.tailor.programs import load_programs
from services.tailor.store import TailorStore
from services.teams.main import TeamsSettings
from services.teams.main import build as build_teams

log = logging.getLogger(__name__)


def ensure_demo_token(data_dir: Path, programs: list[str]) -> str:
    """BUDKAVLE_API_TOKENS, or a demo token for every programme, kept in `<data dir>/demo-token`."""
    if os.environ.get("BUDKAVLE_API_TOKENS"):
        return ""
    path = data_dir / "demo-token"
    token = path.read_text().strip() if path.is_file() else ""
    if len(token) < 16:
        token = secrets.token_urlsafe(24)
        path.write_text(token + "\n")
        path.chmod(0o600)
    os.environ["BUDKAVLE_API_TOKENS"] = f"{token}={'|'.join(programs)}"
    return token


def build_platform(data_dir: Path, staff_scale: float = 1.0) -> Runtime:
    """Compose gateway, tailor, email, teams and intranet on one runtime (environment already set)."""
    tailor_settings = TailorSettings()
    runtime = Runtime.create(tailor_settings, client_id="budkavle")
    tailor_parts, tailor = build_tailor(tailor_settings, runtime)

    async def plan(event):  # type: ignore[no-untyped-def]
        return (await tailor.plan(event)).contract

    async def seed_demo_directory() -> None:
        store = TailorStore(runtime.engine)
        if await store.directory_size() == 0:
            programs = load_programs(tailor_settings.programs_dir)
            municipalities = [(m.name, m.area, frozenset(m.options))
                              for p in programs.values() for m in p.municipalities]
            count = await store.replace_directory(synthetic_directory(municipalities, staff_scale))
            log.info("demo directory created", extra={"recipients": count})

    tailor_parts.on_start = (seed_demo_directory, *tailor_parts.on_start)
    runtime.add(tailor_parts)
    runtime.add(build_gateway(GatewaySettings(), runtime, planner=plan))
    runtime.add(build_email(EmailSettings(), runtime))
    runtime.add(build_teams(TeamsSettings(), runtime))
    runtime.add(build_intranet(IntranetSettings(), runtime))
    return runtime


def write_runtime_file(data_dir: Path, bootstrap: str, port: int, url: str) -> Path:
    path = data_dir / "runtime.json"
    path.write_text(json.dumps({"kafka_bootstrap_servers": bootstrap, "http_port": port, "url": url,
                                "pid": os.getpid()}))
    return path


def read_runtime_file(data_dir: Path) -> dict[str, object] | None:
    path = data_dir / "runtime.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
