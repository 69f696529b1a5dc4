"""`budkavle bench` keeps working: a small run writes every figure (their size is not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_a_small_bench_run_writes_every_figure_as_json(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "services.cli", "bench", "--recipients", "300", "--recipients",
                             "500", "--alerts", "5",
                             "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    [path] = tmp_path.glob("bench-*.json")
    report = json.loads(path.read_text())
    assert {"at", "machine", "versions", "figures", "ratios"} <= set(report)
    figures = report["figures"]
    fan_out = figures["fan_out"]
    assert fan_out["people"] == 500 and fan_out["emails"] == 500
    for key in ("emails_per_second", "raw_ceiling_emails_per_second", "ratio_to_raw_ceiling", "startup_seconds",
                "seconds"):
        assert isinstance(fan_out[key], (int, float)), key
    assert set(fan_out["stages_seconds"]) == {"accept", "relay", "plan", "render_and_emit", "deliver_and_record"}
    assert [run["people"] for run in figures["scaling"]] == [300, 500]
    for run in figures["scaling"]:  # each process of the platform: `budkavle up` and the sender's own
        assert set(run["peak_rss_mib"]) == {"platform", "email", "total"}
        assert set(run["cpu_seconds_per_1000_emails"]) == {"platform", "email"}
        assert set(run["raw_ceiling_by_connections"]) >= {"4"}
    assert isinstance(figures["peak_rss_growth_mib_per_10000_people"], (int, float))
    for route in ("to_teams_card_ms", "to_first_mail_ms"):
        assert set(figures["alert_latency"][route]) == {"p50", "p95", "p99"}
    assert set(figures["alert_latency"]["first_after_cold_start_ms"]) == {"to_teams_card", "to_first_mail"}
    assert isinstance(figures["startup_seconds"], (int, float))
    assert isinstance(figures["consumers_joined_seconds"], (int, float))
    for key in ("planning", "planning_committee_alert", "rendering", "bus_volume_email"):
        assert figures[key], key
    assert set(report["ratios"]) == {"fan_out_to_raw_ceiling", "planning_committee_alert_scan_to_index"}
    assert "fan-out" in result.stdout and str(path) in result.stdout
