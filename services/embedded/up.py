"""`budkavle up`: the whole platform on one machine, with demo data, printing its URLs."""

import os
import signal
import sys
from pathlib import Path

from services.common.logs import configure_logging
from services.common.runtime import serve
from services.common.settings import CommonSettings
from services.embedded.broker import EmbeddedKafka, free_port
from services.embedded.platform import build_platform, ensure_demo_token, write_runtime_file
from services.embedded.sinks import MailSink, mail_viewer, teams_sink
from services.tailor.programs import ProgramConfigError, load_programs


def up(staff_scale: float = 1.0) -> int:
    settings = CommonSettings()
    configure_logging(settings.log_level)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["BUDKAVLE_DATA_DIR"] = str(data_dir)
    try:
        programs = load_programs(settings.programs_dir)
    except ProgramConfigError as exc:
        print(f"budkavle up: {exc}", file=sys.stderr)
        return 2
    port = settings.http_port
    base = settings.resolved_public_url()
    broker = None
    mail = None
    runtime_file: Path | None = None
    try:
        if not settings.kafka_bootstrap_servers:
            broker = EmbeddedKafka(log_path=data_dir / "broker.log")
            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.start()
        if not os.environ.get("SMTP_URL"):
            mail = MailSink(data_dir, free_port())
            mail.start()
            os.environ["SMTP_URL"] = mail.url
        os.environ.setdefault("BUDKAVLE_TEAMS_SINK_URL", f"http://127.0.0.1:{port}/teams-sink")
        os.environ.setdefault("BUDKAVLE_TEAMS_ALLOW_LOOPBACK", "true")
        token = ensure_demo_token(data_dir, sorted(programs))
        runtime = build_platform(data_dir, staff_scale)
        app = runtime.http_app(extra_routers=(mail_viewer(data_dir), teams_sink(data_dir)))
        runtime_file = write_runtime_file(data_dir, os.environ["KAFKA_BOOTSTRAP_SERVERS"], port, base)
        print(_banner(base, token, data_dir, os.environ["KAFKA_BOOTSTRAP_SERVERS"]), flush=True)
        # uvicorn shuts down gracefully on SIGTERM and then re-raises it; Python's default would end the
        # process there and skip the clean-up below, leaving the broker running.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(app, settings.http_host, port)
        return 0
    finally:
        if runtime_file is not None:  # only the file this process wrote
            runtime_file.unlink(missing_ok=True)
        if mail is not None:
            mail.stop()
        if broker is not None:
            broker.stop()


def _banner(base: str, token: str, data_dir: Path, kafka: str) -> str:
    lines = [
        "Budkavle is starting (embedded mode). Ctrl-C stops everything.",
        f"  API            {base}/v1/events",
        f"  Intranet       {base}/intranet/",
        f"  Status page    {base}/intranet/status",
        f"  Atom feed      {base}/intranet/feed.atom",
        f"  Mail sink      {base}/mail/   (files in {data_dir / 'mail'})",
        f"  Teams sink     {data_dir / 'teams'}",
        f"  Health         {base}/healthz  {base}/readyz  {base}/metrics",
        f"  Kafka          {kafka}",
    ]
    if token:
        lines.append(f"  Demo token     {token}   (also in {data_dir / 'demo-token'})")
    return "\n".join(lines)
