"""Figures measured inside one process: planning over the whole directory (by scan and by index), rendering,
what a fan-out puts on the bus, and the raw SMTP ceiling against Postfix's smtp-sink."""

import asyncio
import os
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import aiosmtplib

from contracts.deliveries import EMAIL_CHUNK, EmailRecipient, SendEmail
from contracts.events import parse_event
from programs import load_programs
from services.common.settings import CommonSettings
from services.email.sender import Mail
from services.email.wire import WireFormat
from services.embedded.broker import free_port, wait_for_port
from services.tailor.channels import COMPOSERS, Composition
from services.tailor.directory import synthetic_directory
from services.tailor.index import DirectoryIndex
from services.tailor.planning import plan_deliveries
from services.tailor.rendering import Renderer


def _event(event_type: str, **extra: Any) -> Any:
    payloads = {
        "golive.milestone": {"area": "västra", "planned_date": "2026-10-01", "status": "planned",
                             "title": "Västra området inför Millennium", "what_changes": "Ny vårdinformationsmiljö."},
        "steering.decision": {"committee": "Regionstyrelsen", "title": "Ny tidplan",
                              "decision_text": "Regionstyrelsen godkänner tidplanen.", "rationale": "Klart."},
    }
    return parse_event({"type": event_type, "program": "fvm", "publisher": "bench", "importance": "must_know",
                        "sensitivity": "internal", "payload": payloads[event_type], **extra})


def bench_planning(results: dict[str, Any]) -> None:
    settings = CommonSettings()
    fvm = load_programs(settings.programs_dir)["fvm"]
    municipalities = [(m.name, m.area, frozenset(m.options)) for m in fvm.municipalities]
    directory = list(synthetic_directory(municipalities))
    event = _event("golive.milestone")
    started = time.perf_counter()
    runs = 5
    for _ in range(runs):
        plan = plan_deliveries(event, fvm, directory)
    elapsed = (time.perf_counter() - started) / runs
    tracemalloc.start()  # a separate run: tracing slows every allocation
    plan_deliveries(event, fvm, directory)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    emails = sum(len(v) for v in plan.recipients("email").values())
    results["planning"] = {"directory": len(directory), "groups": len(plan.contract.groups), "emails": emails,
                           "seconds_per_plan": round(elapsed, 4),
                           "recipients_per_second": round(len(directory) / elapsed),
                           "peak_mib": round(peak / 2**20, 1)}
    # An alert to one committee: a scan of the directory against its index.
    index = DirectoryIndex(directory)
    alert = _event("steering.decision", audiences=["strategisk-styrgrupp"])
    timings = {}
    for name, people in (("scan", directory), ("index", index)):
        started = time.perf_counter()
        for _ in range(20):
            plan_deliveries(alert, fvm, people)
        timings[name] = (time.perf_counter() - started) / 20
    results["planning_committee_alert"] = {"ms_scan": round(timings["scan"] * 1000, 2),
                                           "ms_index": round(timings["index"] * 1000, 3),
                                           "examined_with_index": index.examined,
                                           "ratio_scan_to_index": round(timings["scan"] / timings["index"])}
    renderer = Renderer(settings.templates_dir, "http://bench")
    started = time.perf_counter()
    count = 0
    for _ in range(20):
        for audience in fvm.audiences:
            renderer.email(event, fvm, audience)
            count += 1
    per = (time.perf_counter() - started) / count
    results["rendering"] = {"emails_rendered": count, "ms_per_email": round(per * 1000, 3)}
    bench_bus_volume(results, fvm, directory, renderer)


def bench_bus_volume(results: dict[str, Any], fvm: Any, directory: list[Any], renderer: Renderer) -> None:
    """What one must-know design decision puts on the bus for email: a group's message travels once per
    chunk of recipients, not once per person."""
    event = parse_event({"type": "design.decision", "program": "fvm", "publisher": "bench", "importance": "must_know",
                         "sensitivity": "internal", "payload": {
                             "workstream": "Vårdadministration", "level": "workstream", "title": "Gemensam utskrivning",
                             "summary": "Utskrivningen blir gemensam i hela regionen. " * 10}})
    plan = plan_deliveries(event, fvm, directory)
    messages = people = size = 0
    for aid, recipients in plan.recipients("email").items():
        target = Composition(event, fvm, aid, plan.audiences[aid], recipients, (), event.occurred_at)
        for command in COMPOSERS["email"].compose(target, renderer):
            messages += 1
            people += len(command.recipients)  # type: ignore[attr-defined]
            size += len(command.model_dump_json())
    results["bus_volume_email"] = {"emails": people, "bus_messages": messages, "bus_mib": round(size / 2**20, 1),
                                   "bytes_per_email": round(size / max(people, 1))}


def raw_ceiling(port: int, pool: int, messages: int) -> float:
    """Mails per second that aiosmtplib alone sends, pre-rendered, over `pool` connections: the wire."""
    return asyncio.run(_smtp_throughput(port, pool, messages))


async def _smtp_throughput(port: int, pool: int, messages: int) -> float:
    """Every mail rendered to its bytes first; then only aiosmtplib's sendmail over `pool` connections."""
    wire = WireFormat()
    event_id = uuid4()
    rendered = [(str(mail.recipient.address), wire.to_bytes(mail))
                for start in range(0, messages, EMAIL_CHUNK)
                for mail in Mail.each_of(SendEmail(
                    event_id=event_id, program="fvm", audience_id="bench", sender_name="FVM",
                    sender_address="fvm@vgregion.se", subject="Bench", text_body="t" * 2000,
                    html_body="<p>" + "h" * 4000 + "</p>",
                    recipients=tuple(EmailRecipient(id=f"p{n}", address=f"p{n}@example.se", name="P")
                                     for n in range(start, min(messages, start + EMAIL_CHUNK)))))]
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in rendered:
        queue.put_nowait(item)
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port) for _ in range(pool)]

    async def worker(client: aiosmtplib.SMTP) -> None:
        await client.connect()
        while not queue.empty():
            to, message = queue.get_nowait()
            await client.sendmail("fvm@vgregion.se", [to], message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return messages / (time.perf_counter() - started)


@contextmanager
def smtp_sink() -> Iterator[int | None]:
    """Postfix's smtp-sink on a free port (None where Postfix is not installed)."""
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.path.exists(sink):
        yield None
        return
    port = free_port()
    # -u: smtp-sink refuses to run as root without a user to drop to
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen([sink, *user, "-c", f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 10)
        yield port
    finally:
        process.terminate()
        process.wait()
