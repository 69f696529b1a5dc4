"""The sender's own process (the email service under `budkavle up`) dies alone in the middle of a fan-out: the
platform starts it again, and the event ends with everyone reached once."""

import os
import signal
from pathlib import Path

import httpx

from services.embedded.broker import free_port
from tests.e2e.crash import POOL_SIZE, FanOut, mails, sender_process, start
from tests.waiting import wait_until


def test_a_sender_process_that_dies_alone_is_started_again_and_the_fan_out_ends_once_for_everyone(
        tmp_path: Path, open_programs_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path, port, "up.log", open_programs_dir, staff_scale="0.25")  # some 1 300 mails
    try:
        fan_out, sender = FanOut.under_way(url, tmp_path, process)
        os.kill(sender, signal.SIGKILL)
        wait_until(lambda: sender_process(process) not in (None, sender), 60, "the runner to start the sender again")
        status = fan_out.delivered("the event to be delivered after the sender came back")
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, 60, "the platform to be whole")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    got = mails(tmp_path)
    targeted = status["totals"]["email"]["targeted"]
    assert status["totals"]["email"]["sent"] == targeted == len(got)
    assert sum(n - 1 for n in got.values()) <= POOL_SIZE  # at most the mails in flight when it died
    assert "service process ended; starting it again" in (tmp_path / "up.log").read_text()
