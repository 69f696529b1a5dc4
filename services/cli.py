"""`budkavle`: the command line — up, kafka, publish, preview, recipients import, digest run, dead-letters, audit, bench."""

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from contracts.channels import CHANNELS
from services.common.settings import CommonSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="budkavle", description="Budkavle: programme communication.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_up = sub.add_parser("up", help="the whole platform, embedded, with demo data")
    p_up.add_argument("--staff-scale", type=float, default=1.0,
                      help="size of the synthetic staff directory (1.0 = about 47 000 people)")
    p_up.add_argument("--no-history", action="store_true",
                      help="do not publish the demo history on first start (also BUDKAVLE_DEMO_HISTORY=false)")

    p_pub = sub.add_parser("publish", help="publish an event from a JSON or YAML file")
    p_pub.add_argument("file", type=Path)
    p_pub.add_argument("--dry-run", action="store_true", help="show the delivery plan, send nothing")
    p_pub.add_argument("--url", help="gateway base URL (default: the running embedded platform)")
    p_pub.add_argument("--token", help="bearer token (default: $BUDKAVLE_TOKEN or the demo token)")
    p_pub.add_argument("--idempotency-key")

    p_prev = sub.add_parser("preview", help="render one message for one target group without sending")
    p_prev.add_argument("--event", type=Path, required=True)
    p_prev.add_argument("--audience", required=True)
    p_prev.add_argument("--channel", choices=sorted(CHANNELS), required=True)
    p_prev.add_argument("--out", type=Path)

    p_rec = sub.add_parser("recipients", help="the recipient directory")
    rec_sub = p_rec.add_subparsers(dest="recipients_command", required=True)
    p_imp = rec_sub.add_parser("import", help="replace the directory from an HSA-like CSV file")
    p_imp.add_argument("file", type=Path)
    p_imp.add_argument("--skip-invalid", action="store_true",
                       help="import the valid rows even when some are rejected (default: import nothing)")

    p_dead = sub.add_parser("dead-letters", help="what the bus could not use: list, or send one again")
    dead_sub = p_dead.add_subparsers(dest="dead_letters_command", required=True)
    dead_sub.add_parser("list", help="the dead letters this token may see, newest first")
    p_redrive = dead_sub.add_parser("redrive", help="send one dead letter again, to the topic it came from")
    p_redrive.add_argument("id", type=int)
    p_dead.add_argument("--url", help="gateway base URL (default: the running embedded platform)")
    p_dead.add_argument("--token", help="bearer token (default: $BUDKAVLE_TOKEN or the demo token)")

    p_audit = sub.add_parser("audit", help="the audit register: export it, or verify that nobody altered it")
    audit_sub = p_audit.add_subparsers(dest="audit_command", required=True)
    p_export = audit_sub.add_parser("export", help="the register's rows (an admin's token), as CSV or JSON")
    p_export.add_argument("--program", help="one programme's rows (default: all, for an admin of every programme)")
    p_export.add_argument("--format", choices=("csv", "json"), default="csv")
    p_export.add_argument("--url", help="gateway base URL (default: the running embedded platform)")
    p_export.add_argument("--token", help="bearer token (default: $BUDKAVLE_TOKEN or the demo token)")
    audit_sub.add_parser("verify", help="check the register in the gateway's database (DATABASE_URL, or the "
                                        "data directory's): names the first row changed, inserted or removed")

    p_digest = sub.add_parser("digest", help="digests: send one now")
    digest_sub = p_digest.add_subparsers(dest="digest_command", required=True)
    p_run = digest_sub.add_parser("run", help="a digest now, for a programme's groups with a cadence (or one)")
    p_run.add_argument("--program", required=True)
    p_run.add_argument("--audience", help="one target group (default: every group with a digest cadence)")
    p_run.add_argument("--period", help="2026-11 (a month) or 2026-W47 (a week); default: the last whole one")

    p_kafka = sub.add_parser("kafka", help="Apache Kafka itself on loopback (KRaft), until Ctrl-C: to run the "
                                           "platform against the production engine")
    p_kafka.add_argument("--brokers", type=int, choices=(1, 3), default=3)

    sub.add_parser("bench", add_help=False,
                   help="measure the whole platform: fan-out, scaling, alert latency, startup (bench --help)")

    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "up":
            from services.embedded.up import up

            return up(args.staff_scale, history=not args.no_history)
        if args.command == "publish":
            return publish(args.file, args.dry_run, args.url, args.token, args.idempotency_key)
        if args.command == "preview":
            return preview(args.event, args.audience, args.channel, args.out)
        if args.command == "bench":
            from services.bench import main as bench

            return bench(extra)
        if args.command == "kafka":
            return run_kafka(args.brokers)
        if args.command == "recipients":
            return import_recipients(args.file, args.skip_invalid)
        if args.command == "audit":
            if args.audit_command == "verify":
                return verify_audit()
            return export_audit(args.program, args.format, args.url, args.token)
        if args.command == "digest":
            return run_digest(args.program, args.audience, args.period)
        if args.command == "dead-letters":
            return dead_letters(args.dead_letters_command, getattr(args, "id", None), args.url, args.token)
    except CliError as exc:
        print(f"budkavle {args.command}: {exc}", file=sys.stderr)
        return 2
    return 2


class CliError(Exception):
    pass


def run_kafka(brokers: int) -> int:
    """A KRaft cluster until Ctrl-C; the KAFKA_BOOTSTRAP_SERVERS line is printed once it takes writes."""
    import signal
    import time

    from services.embedded.apache_kafka import SCRAM_USER, KafkaCluster, kafka_version

    cluster = KafkaCluster(brokers)
    started = time.monotonic()
    print(f"Apache Kafka {kafka_version()}: starting {brokers} broker(s) in {cluster.work_dir}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        cluster.start()
        print(f"started in {time.monotonic() - started:.1f} s; SCRAM user {SCRAM_USER} on "
              f"KAFKA_SASL_BOOTSTRAP_SERVERS={cluster.sasl_bootstrap_servers} "
              f"KAFKA_SASL_PASSWORD={cluster.scram_password}; mutual TLS on "
              f"KAFKA_SSL_BOOTSTRAP_SERVERS={cluster.ssl_bootstrap_servers} (CA, client certificate and key in "
              f"{cluster.tls})", flush=True)
        print(f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


def load_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CliError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected one event (a mapping)")
    return data


def _target(url: str | None, token: str | None) -> tuple[str, str]:
    settings = CommonSettings()
    if url is None:
        from services.embedded.platform import read_runtime_file

        running = read_runtime_file(settings.data_dir)
        if running is None:
            raise CliError(f"no running platform in {settings.data_dir} (start `budkavle up`, or give --url)")
        url = str(running["url"])
    token = token or os.environ.get("BUDKAVLE_TOKEN")
    if not token:
        demo = settings.data_dir / "demo-token"
        if not demo.is_file():
            raise CliError("no token: give --token or set BUDKAVLE_TOKEN")
        token = demo.read_text().strip()
    return url.rstrip("/"), token


def run_digest(program: str, audience: str | None, period: str | None) -> int:
    from datetime import UTC, datetime

    from programs import load_programs
    from services.embedded.platform import read_runtime_file
    from services.scheduler.manual import digests_to_run, publish_dues

    settings = CommonSettings()
    try:
        dues = digests_to_run(load_programs(settings.programs_dir), program, audience, period, datetime.now(UTC))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    running = read_runtime_file(settings.data_dir) or {}
    bootstrap = settings.kafka_bootstrap_servers or str(running.get("kafka_bootstrap_servers", ""))
    if not bootstrap:
        raise CliError(f"no running platform in {settings.data_dir} (start `budkavle up`, or set "
                       f"KAFKA_BOOTSTRAP_SERVERS)")
    asyncio.run(publish_dues(bootstrap, dues))
    for due in dues:
        assert due.period is not None
        print(f"digest asked for: {due.program}/{due.audience_id} {due.period.label} (id {due.digest_id})")
    return 0


def publish(path: Path, dry_run: bool, url: str | None, token: str | None, idempotency_key: str | None) -> int:
    event = load_document(path)
    base, bearer = _target(url, token)
    headers = {"Authorization": f"Bearer {bearer}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    try:
        # YAML reads dates and timestamps as objects; send them as ISO 8601 text
        body = json.dumps(event, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
        response = httpx.post(f"{base}/v1/events", content=body.encode(), timeout=60.0,
                              headers={**headers, "Content-Type": "application/json"},
                              params={"dry_run": "true"} if dry_run else None)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {exc}") from exc
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if response.status_code < 300 else 1


def dead_letters(command: str, letter_id: int | None, url: str | None, token: str | None) -> int:
    base, bearer = _target(url, token)
    headers = {"Authorization": f"Bearer {bearer}"}
    try:
        if command == "list":
            response = httpx.get(f"{base}/v1/dead-letters", headers=headers, timeout=30.0)
        else:
            response = httpx.post(f"{base}/v1/dead-letters/{letter_id}/redrive", headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {exc}") from exc
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if response.status_code < 300 else 1


def export_audit(program: str | None, fmt: str, url: str | None, token: str | None) -> int:
    base, bearer = _target(url, token)
    params = {"format": fmt, **({"program": program} if program else {})}
    try:
        response = httpx.get(f"{base}/v1/audit", params=params, headers={"Authorization": f"Bearer {bearer}"},
                             timeout=120.0)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {base}: {exc}") from exc
    if response.status_code != 200:
        raise CliError(f"the gateway refused ({response.status_code}): {response.text[:500]}")
    sys.stdout.write(response.text)
    return 0


def verify_audit() -> int:
    """0 when the register is whole; 1 naming the first row changed, inserted or removed."""
    from services.common.db import create_engine
    from services.gateway.audit import AuditRegister

    async def run() -> tuple[int, str | None]:
        engine = create_engine(CommonSettings().resolved_database_url("gateway"))
        try:
            return await AuditRegister(engine).verify()
        finally:
            await engine.dispose()

    try:
        rows, problem = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - any database error is reported, not a traceback
        raise CliError(f"cannot read the register: {type(exc).__name__}: {exc}") from exc
    if problem is not None:
        print(f"the audit register was altered: {problem}", file=sys.stderr)
        return 1
    print(f"the audit register is whole: {rows} rows, each following the one before")
    return 0


def preview(event_path: Path, audience_id: str, channel: str, out: Path | None) -> int:
    from contracts.events import parse_event
    from programs import load_programs
    from services.tailor.channels import preview as compose_preview
    from services.tailor.rendering import Renderer

    settings = CommonSettings()
    try:
        event = parse_event(load_document(event_path))
    except ValidationError as exc:
        from services.common.subscriptions import validation_reason

        raise CliError(f"{event_path}: {validation_reason(exc)}") from exc
    programs = load_programs(settings.programs_dir)
    program = programs.get(event.program)
    if program is None:
        raise CliError(f"programme {event.program!r} has no configuration in {settings.programs_dir}")
    audience = program.audience(audience_id)
    if audience is None:
        raise CliError(f"programme {program.program!r} has no target group {audience_id!r}")
    files = compose_preview(event, program, audience, channel, Renderer(settings.templates_dir,
                                                                        settings.resolved_public_url()))
    stem = out.with_suffix("") if out else Path(f"preview-{audience_id}-{channel}")
    for n, (suffix, text) in enumerate(files.items()):
        path = out if out is not None and n == 0 else stem.with_suffix(suffix)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


def import_recipients(path: Path, skip_invalid: bool) -> int:
    from programs import load_programs
    from services.tailor.directory import parse_recipients_csv

    settings = CommonSettings()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read as UTF-8 text: {exc}") from exc
    areas = {a for p in load_programs(settings.programs_dir).values() for a in p.areas}
    try:
        report = parse_recipients_csv(text, areas)
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from exc
    for row in report.rejected:
        print(f"{path}:{row.line}: rejected {row.recipient_id or '(no id)'}: {row.reason}", file=sys.stderr)
    if report.rejected and not skip_invalid:
        print(f"{len(report.rejected)} rows rejected; nothing imported (use --skip-invalid to import the "
              f"{len(report.accepted)} valid rows)", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    count = asyncio.run(_replace_directory(settings.resolved_database_url("tailor"), report.accepted))
    print(f"imported {count} recipients; {len(report.rejected)} rejected")
    return 0


async def _replace_directory(database_url: str, people: Any) -> int:
    from services.common.db import create_engine
    from services.common.migrations import upgrade
    from services.tailor.store import MIGRATIONS, TailorStore

    engine = create_engine(database_url)
    try:
        await upgrade(engine, MIGRATIONS)
        return await TailorStore(engine).replace_directory(people)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
