"""A service of the embedded platform in a process of its own (`python -m services.embedded.apart`).

The email service runs apart so that sending has a core of its own: in one process, rendering, SMTP and the
ledger shared one event loop with every other service, and the CPU, not the network, was the limit. The
platform starts the process among its first start hooks, starts it again when it dies alone (the ledger in its
own database makes it whole; what it had in flight comes back from the bus), and stops it with the platform.
Linux ends it when the platform's process ends, however that ends.
"""

import asyncio
import contextlib
import logging
import os
import sys
import time

import httpx

from services.common.runtime import ServiceParts
from services.common.settings import CommonSettings
from services.embedded.broker import die_with_parent, free_port

log = logging.getLogger(__name__)

#: The wait before a process that died is started again: the first, doubled per death in a row, up to the last.
RESTART_FIRST_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
#: A process that ran this long before it died starts again without waiting long: it was not failing at start.
STEADY_SECONDS = 60.0


class ServiceApart:
    def __init__(self, name: str, settings: CommonSettings, public_url: str) -> None:
        self.name = name
        self.port = free_port()
        self.environment = {**os.environ, **settings.as_environment(), "BUDKAVLE_HTTP_HOST": "127.0.0.1",
                            "BUDKAVLE_HTTP_PORT": str(self.port), "BUDKAVLE_PUBLIC_URL": public_url}
        self.process: asyncio.subprocess.Process | None = None
        self.state = "starting"
        self._started = 0.0
        self._stopping = False

    def parts(self) -> ServiceParts:
        """Started among the platform's first start hooks (its start overlaps the others'), then kept running
        by a background task."""
        return ServiceParts(name=self.name, on_start=(self._spawn,), background=(self.run,), on_stop=(self.stop,),
                            readiness=self.readiness)

    async def _spawn(self) -> None:
        self.state = "starting"
        self._started = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.embedded.apart", self.name, env=self.environment,
            preexec_fn=die_with_parent)
        log.info("service process started", extra={"service": self.name, "pid": self.process.pid, "port": self.port})

    async def run(self) -> None:
        """Keep the process running until the platform stops."""
        failures = 0
        while not self._stopping:
            if self.process is None or self.process.returncode is not None:
                await self._spawn()
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            failures = 1 if time.monotonic() - self._started > STEADY_SECONDS else failures + 1
            wait = min(RESTART_MAX_SECONDS, RESTART_FIRST_SECONDS * 2 ** (failures - 1))
            self.state = f"restarting after exit code {code}"
            log.error("service process ended; starting it again", extra={
                "service": self.name, "exit_code": code, "restart_in_seconds": wait})
            await asyncio.sleep(wait)
            self.process = None

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()  # it shuts down as a service does: consumers leave, offsets are committed
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def readiness(self) -> str:
        """The process's own /readyz, as a check of the platform's: "ok", "joining" (ready, its consumers
        joining their groups), "starting", or what is wrong."""
        if self.process is None or self.process.returncode is not None:
            return self.state
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                answer = await client.get(f"http://127.0.0.1:{self.port}/readyz")
        except httpx.HTTPError:
            return "starting"
        with contextlib.suppress(ValueError):
            checks = answer.json()
            if answer.status_code == 200:  # ready; its consumers may still be joining their groups
                return "joining" if "joining" in checks.values() else "ok"
            return "unready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v not in ("ok", "joining"))
        return f"unready: HTTP {answer.status_code}"
