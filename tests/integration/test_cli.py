"""The `budkavle` command line: recipients import and preview, run as a user runs them."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

HEADER = "id,name,email,organisation,role,profession,area,municipality,options\n"


def budkavle(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["BUDKAVLE_DATA_DIR"] = str(tmp_path / "var")
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def directory_ids(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "var" / "tailor.db") as db:
        return [r[0] for r in db.execute("SELECT id FROM tailor_recipients ORDER BY id")]


def test_import_with_rejected_rows_reports_them_and_imports_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "p1,Anna,anna@example.se,SU,chef,chef,västra,,\np2,Bo,bo@example.se,SU,chef,chef,södra,,\n")
    assert budkavle(tmp_path, "recipients", "import", str(good)).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "p3,Cid,cid@example.se,SU,chef,chef,västra,,\np4,Dag,not-an-email,SU,chef,chef,västra,,\n"
                   "p3,Eva,eva@example.se,SU,chef,chef,västra,,\n")
    result = budkavle(tmp_path, "recipients", "import", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3: rejected p4: bad email address" in result.stderr
    assert f"{bad}:4: rejected p3: duplicate id" in result.stderr
    assert "nothing imported" in result.stderr
    assert directory_ids(tmp_path) == ["p1", "p2"]  # the earlier directory stands, untouched
    skipped = budkavle(tmp_path, "recipients", "import", "--skip-invalid", str(bad))
    assert skipped.returncode == 0 and "imported 1 recipients; 2 rejected" in skipped.stdout
    assert directory_ids(tmp_path) == ["p3"]


def test_import_of_a_file_with_a_wrong_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,namn\n1,A\n")
    result = budkavle(tmp_path, "recipients", "import", str(path))
    assert result.returncode == 2 and "lacks required columns" in result.stderr


def test_preview_writes_each_channels_message(tmp_path: Path) -> None:
    event = ROOT / "deploy" / "examples" / "steering-decision.json"
    out = tmp_path / "mail.html"
    result = budkavle(tmp_path, "preview", "--event", str(event), "--audience", "politisk-styrgrupp",
                      "--channel", "email", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Motivering" in out.read_text() and "FVM (Framtidens vårdinformationsmiljö)" in out.read_text()
    assert out.with_suffix(".txt").read_text().startswith("Ämne: Regionstyrelsen har beslutat")
    card = tmp_path / "card.json"
    assert budkavle(tmp_path, "preview", "--event", str(event), "--audience", "programstyrgrupp",
                    "--channel", "teams", "--out", str(card)).returncode == 0
    assert json.loads(card.read_text())["type"] == "AdaptiveCard"


def test_preview_for_an_unknown_audience_is_a_clear_error(tmp_path: Path) -> None:
    event = ROOT / "deploy" / "examples" / "steering-decision.json"
    result = budkavle(tmp_path, "preview", "--event", str(event), "--audience", "nobody", "--channel", "email")
    assert result.returncode == 2 and "has no target group 'nobody'" in result.stderr


def test_publish_without_a_running_platform_says_so(tmp_path: Path) -> None:
    result = budkavle(tmp_path, "publish", str(ROOT / "deploy" / "examples" / "steering-decision.json"))
    assert result.returncode == 2 and "no running platform" in result.stderr


def test_a_second_platform_on_a_data_directory_in_use_refuses_to_start(tmp_path: Path) -> None:
    from services.embedded.up import claim_data_dir

    held = claim_data_dir(tmp_path)  # as a running `budkavle up` holds it
    assert not isinstance(held, str)
    second = subprocess.run([sys.executable, "-m", "services.cli", "up"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "BUDKAVLE_DATA_DIR": str(tmp_path)}, timeout=60)
    held.close()  # the first one ends: the directory is free again
    again = claim_data_dir(tmp_path)
    assert second.returncode == 2
    assert f"the data directory {tmp_path} is in use by another `budkavle up` (pid {os.getpid()})" in second.stderr
    assert not isinstance(again, str)
    again.close()


def test_a_data_directory_from_before_the_split_gives_each_service_its_tables_and_keeps_the_old_file(
        tmp_path: Path) -> None:
    from services.embedded.up import split_shared_database

    with sqlite3.connect(tmp_path / "budkavle.db") as db:
        db.execute("CREATE TABLE email_ledger (event_id TEXT, recipient_id TEXT)")
        db.execute("INSERT INTO email_ledger VALUES ('e1', 'p1')")
    split_shared_database(tmp_path, ("email", "tailor"))
    for service in ("email", "tailor"):
        with sqlite3.connect(tmp_path / f"{service}.db") as db:
            assert db.execute("SELECT event_id, recipient_id FROM email_ledger").fetchall() == [("e1", "p1")]
    assert not (tmp_path / "budkavle.db").exists() and (tmp_path / "budkavle.db.before-split").is_file()
    (tmp_path / "budkavle.db").write_bytes(b"")  # a split directory is never split again
    split_shared_database(tmp_path, ("email", "tailor"))
    assert (tmp_path / "budkavle.db").exists()
