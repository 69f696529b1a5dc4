"""Services as their own processes (`python -m services.<name>`), as production runs them."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx

from services.embedded.broker import free_port
from tests.conftest import ROOT
from tests.waiting import wait_until


class ServiceProcess:
    """One service process on a free port, logging to `<log_dir>/<label>.log`."""

    def __init__(self, name: str, log_dir: Path, env: dict[str, str], label: str | None = None) -> None:
        self.name = name
        self.label = label or name
        self.log_path = log_dir / f"{self.label}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BUDKAVLE_HTTP_PORT": str(self.port), "BUDKAVLE_DATA_DIR": str(log_dir),
                    "BUDKAVLE_LOG_LEVEL": "WARNING", **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.last_readiness = "nothing yet"
        self._log: IO[bytes] | None = None

    def start(self) -> "ServiceProcess":
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (the process writes it until it ends)
        self.process = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], cwd=ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def ready(self) -> bool:
        """/readyz answers 200, as a Kubernetes probe asks it (5 s: the check of Kafka alone may take 2)."""
        assert self.process is not None and self.process.poll() is None, self.log_path.read_text()[-3000:]
        try:
            answer = httpx.get(f"{self.url}/readyz", timeout=5)
        except httpx.HTTPError as error:
            self.last_readiness = repr(error)
            return False
        self.last_readiness = answer.text
        return answer.status_code == 200

    def wait_ready(self, timeout: float = 90) -> "ServiceProcess":
        try:
            wait_until(self.ready, timeout, f"{self.label} to be ready")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; /readyz last said {self.last_readiness}; its log ends:\n"
                               f"{self.log_path.read_text()[-3000:]}") from None
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int | None:
        """Ctrl-C; the exit status (None when it had to be killed)."""
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                code = self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process is not None:
            code = self.process.returncode
        if self._log is not None:
            self._log.close()
        return code
