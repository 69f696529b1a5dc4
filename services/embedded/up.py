"""`budkavle up`: the whole platform on one machine, with demo data, printing its URLs."""

import fcntl
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import IO, Any

from programs import ProgramConfigError, load_programs
from services.common.links import kept_secret
from services.common.logs import configure_logging
from services.common.malloc import limit_malloc_arenas
from services.common.runtime import ServiceParts, serve
from services.common.settings import CommonSettings
from services.common.signin import sessions_for
from services.email.main import EmailSettings
from services.embedded.broker import EmbeddedKafka, die_with_parent, free_port
from services.embedded.history import tell
from services.embedded.oidc import DEMO_PEOPLE, LocalProvider
from services.embedded.platform import SERVICE_NAMES, PlatformSettings, build_platform, write_runtime_file
from services.embedded.sinks import MailSink, mail_viewer, teams_sink
from services.gateway.main import GatewaySettings
from services.teams.main import TeamsSettings

log = logging.getLogger(__name__)


def up(staff_scale: float = 1.0, history: bool = True) -> int:
    limit_malloc_arenas()  # before any thread starts; the services apart do the same
    common = CommonSettings()
    configure_logging(common.log_level)
    data_dir = common.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    claim = claim_data_dir(data_dir)
    if isinstance(claim, str):
        print(f"budkavle up: {claim}", file=sys.stderr)
        return 2
    try:
        programs = load_programs(common.programs_dir)
    except ProgramConfigError as exc:
        print(f"budkavle up: {exc}", file=sys.stderr)
        return 2
    if not common.database_url:
        split_shared_database(data_dir, SERVICE_NAMES)
    migrating = migrate_apart(data_dir)
    port = common.http_port
    base = common.resolved_public_url()
    shared: dict[str, Any] = {"data_dir": data_dir}
    if not common.metrics_token:
        shared["metrics_token"] = kept_secret(data_dir, "metrics-token", 16)
    per_service: dict[str, dict[str, Any]] = {"gateway": {}, "email": {}, "teams": {}, "insights": {}}
    broker = None
    mail = None
    provider = None
    runtime_file: Path | None = None
    try:
        if not common.oidc_issuer:
            provider = LocalProvider(common.http_host if common.http_host != "0.0.0.0" else "127.0.0.1")
            shared.update(oidc_issuer=provider.start(), oidc_client_id=provider.client_id,
                          oidc_client_secret=provider.client_secret)
        if not common.kafka_bootstrap_servers:
            broker = EmbeddedKafka(log_path=data_dir / "broker.log")
            shared["kafka_bootstrap_servers"] = broker.start()
        if not EmailSettings().smtp_url:
            mail = MailSink(data_dir, free_port())
            mail.start()
            per_service["email"]["smtp_url"] = mail.url
        if not TeamsSettings().sink_url:
            per_service["teams"].update(sink_url=f"http://127.0.0.1:{port}/teams-sink", allow_loopback_http=True)
        token = ""
        if not GatewaySettings().api_tokens:
            token = kept_secret(data_dir, "demo-token", 16)
            # The demo token publishes, and reads the follow-up figures (an admin token may both).
            tokens = f"{token}={'|'.join(sorted(programs))}:admin"
            per_service["gateway"]["api_tokens"] = per_service["insights"]["api_tokens"] = tokens
        settings = PlatformSettings.load(shared, **per_service)
        kafka = settings.tailor.kafka_bootstrap_servers
        runtime = build_platform(settings, staff_scale, apart=True)
        if token and history and os.environ.get("BUDKAVLE_DEMO_HISTORY", "true").lower() not in ("false", "0", "no"):
            sessions = sessions_for(settings.by_service["gateway"], True, None)
            runtime.add(ServiceParts(name="demo-history", background=(partial(tell, base, token, data_dir, sessions),)))
        app = runtime.http_app(extra_routers=(mail_viewer(data_dir), teams_sink(data_dir)))
        if migrating.wait() != 0:
            print("budkavle up: the tables could not be brought to their newest revision (see above)", file=sys.stderr)
            return 2
        runtime.tables_migrated()
        runtime_file = write_runtime_file(data_dir, kafka, port, base)
        print(_banner(base, token, data_dir, kafka, provider is not None), flush=True)
        # uvicorn shuts down gracefully on SIGTERM and then re-raises it; Python's default would end the
        # process there and skip the clean-up below, leaving the broker running.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(app, common.http_host, port)
        return 0
    finally:
        if migrating.poll() is None:
            migrating.kill()
            migrating.wait()
        if runtime_file is not None:  # only the file this process wrote
            runtime_file.unlink(missing_ok=True)
        if mail is not None:
            mail.stop()
        if provider is not None:
            provider.stop()
        if broker is not None:
            broker.stop()


def migrate_apart(data_dir: Path) -> "subprocess.Popen[bytes]":
    """Every service's tables brought to their newest revision by a process of its own, while this one
    starts the broker and composes the services: Alembic and the revisions never load in the platform's
    process, whose memory they would hold for as long as it runs."""
    return subprocess.Popen([sys.executable, "-m", "services.embedded.migrations", "upgrade", *SERVICE_NAMES],
                            env={**os.environ, "BUDKAVLE_DATA_DIR": str(data_dir)}, stdout=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)


def split_shared_database(data_dir: Path, services: tuple[str, ...]) -> None:
    """A data directory from before each service had its own file (`budkavle.db`, every service's tables):
    each service gets a copy of it to go on from (its own tables in it, with their history; the others' are
    left unread), and the shared file is kept aside as `budkavle.db.before-split`. Nothing is lost."""
    shared = data_dir / "budkavle.db"
    if not shared.is_file() or any((data_dir / f"{name}.db").exists() for name in services):
        return
    with closing(sqlite3.connect(shared)) as source:
        for name in services:
            with closing(sqlite3.connect(data_dir / f"{name}.db")) as target:
                source.backup(target)
    shared.rename(data_dir / "budkavle.db.before-split")
    log.info("the shared database is now one file per service", extra={"data_dir": str(data_dir)})


def claim_data_dir(data_dir: Path) -> IO[str] | str:
    """Hold `<data dir>/budkavle.lock` for as long as this process lives (the kernel lets go when it ends, even
    by SIGKILL), or say who holds it: two platforms on one data directory would both schedule, both relay the
    outbox and both write the one SQLite file."""
    lock = open(data_dir / "budkavle.lock", "a+")  # noqa: SIM115 (held until the process ends)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        return (f"the data directory {data_dir} is in use by another `budkavle up` ({holder}); stop that one, or "
                f"give this one its own BUDKAVLE_DATA_DIR")
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}\n")
    lock.flush()
    return lock


def _banner(base: str, token: str, data_dir: Path, kafka: str, local_provider: bool) -> str:
    lines = [
        "Budkavle is starting (embedded mode). Ctrl-C stops everything.",
        f"  Console        {base}/console/   (compose, approve, follow delivery, correct; sign in as a demo person below)",
        f"  API            {base}/v1/events   (OpenAPI: {base}/docs)",
        f"  Intranet       {base}/intranet/",
        f"  Status page    {base}/intranet/status",
        f"  Atom feed      {base}/intranet/feed.atom",
        f"  Mail sink      {base}/mail/   (files in {data_dir / 'mail'})",
        f"  Teams sink     {data_dir / 'teams'}",
        f"  Preferences    {base}/preferences/<token>   (each newsletter and digest links to its reader's own)",
        "  Digest now     budkavle digest run --program fvm --audience programstyrgrupp",
        f"  Follow-up      {base}/insights/   (reached, read, understood, involved; for readers of a programme)",
        f"  Sign in        {base}/auth/login",
        f"  Health         {base}/healthz  {base}/readyz",
        f"  Metrics        {base}/metrics   (bearer BUDKAVLE_METRICS_TOKEN; unset: the one in {data_dir / 'metrics-token'})",
        f"  Kafka          {kafka}",
    ]
    if token:
        lines.append(f"  Demo token     {token}   (admin of every programme; also in {data_dir / 'demo-token'})")
    if local_provider:
        lines.append("  Demo people    (the local sign-in's form: enter one of these, or click it)")
        lines += [f"                 {p.sub:<26} {p.what}" for p in DEMO_PEOPLE]
    return "\n".join(lines)
