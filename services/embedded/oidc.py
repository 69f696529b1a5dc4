"""The embedded mode's OpenID provider: `oidc-provider-mock` on a free loopback port, with the demo people,
so that `budkavle up` signs people in through the same code path as production (where
BUDKAVLE_OIDC_ISSUER names the region's provider)."""

import logging
import secrets
import subprocess
import sys
from dataclasses import dataclass

from services.embedded.broker import die_with_parent, end_process, free_port, wait_for_port


@dataclass(frozen=True)
class DemoPerson:
    sub: str
    name: str
    groups: tuple[str, ...]
    what: str  # what the banner says they may do


#: The people DESIGN.md names, and two more: a member of FVM's staff with no role, and someone of no programme.
#: Their groups are what the programme files map to roles.
DEMO_PEOPLE = (
    DemoPerson("redaktor@fvm.example", "Rebecka Redaktör", ("fvm-redaktorer",), "FVM redaktör"),
    DemoPerson("godkannare@fvm.example", "Gustav Godkännare", ("fvm-godkannare",), "FVM godkännare"),
    DemoPerson("lasare@fvm.example", "Lisa Läsare", ("fvm-lasare",), "FVM läsare (uppföljning)"),
    DemoPerson("redaktor@fvis.example", "Ronja Redaktör", ("fvis-redaktorer",), "FVIS redaktör"),
    DemoPerson("godkannare@fvis.example", "Gösta Godkännare", ("fvis-godkannare",), "FVIS godkännare"),
    DemoPerson("admin@budkavle.example", "Ada Administratör", ("budkavle-administratorer",), "administratör, båda"),
    DemoPerson("medarbetare@fvm.example", "Mats Medarbetare", ("fvm-medarbetare",), "medarbetare i FVM, ingen roll"),
    DemoPerson("extern@example.org", "Elin Extern", (), "ingen roll i något program"),
)


class LocalProvider:
    """The provider in a process of its own (`python -m services.embedded.oidc <host> <port>`) until `stop`: it
    stands in for the region's provider, as the broker and the mail sink stand in for theirs, and its web
    framework has no place in the platform's memory. Linux ends it with the process that started it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.client_id = "budkavle-lokal"
        self.client_secret = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        self._process = subprocess.Popen([sys.executable, "-m", "services.embedded.oidc", self.host, str(self.port)],
                                         preexec_fn=die_with_parent)
        try:
            wait_for_port(self.host, self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        if self._process.poll() is not None:
            raise RuntimeError(f"the local OpenID provider exited at start with code {self._process.returncode}")
        return self.issuer

    def stop(self) -> None:
        if self._process is not None:
            end_process(self._process)
        self._process = None


def serve(host: str, port: int) -> None:
    """The provider with the demo people, until the process is ended."""
    import oidc_provider_mock
    import werkzeug.serving

    # The provider logs each code it issues with the person's claims (their address): not at info level.
    logging.basicConfig(level=logging.WARNING)
    for name in ("werkzeug", "oidc_provider_mock"):
        logging.getLogger(name).setLevel(logging.WARNING)
    users = [oidc_provider_mock.User(sub=p.sub, claims={"name": p.name, "email": p.sub, "groups": list(p.groups)})
             for p in DEMO_PEOPLE]
    app = oidc_provider_mock.app(user_claims=users, require_nonce=True, issue_refresh_token=False)
    werkzeug.serving.make_server(host, port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3 or not sys.argv[2].isdigit():
        sys.exit("usage: python -m services.embedded.oidc <host> <port>")
    try:
        serve(sys.argv[1], int(sys.argv[2]))
    except KeyboardInterrupt:
        pass
