"""The embedded mode's OpenID provider: `oidc-provider-mock` on a free loopback port, with the demo people,
so that `budkavle up` signs people in through the same code path as production (where
BUDKAVLE_OIDC_ISSUER names the region's provider)."""

import logging
import secrets
import threading
from dataclasses import dataclass

import oidc_provider_mock
import werkzeug.serving

from services.embedded.broker import free_port


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
    """The provider, served on a thread of this process until `stop`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.client_id = "budkavle-lokal"
        self.client_secret = secrets.token_urlsafe(24)
        self._server: werkzeug.serving.BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        # The provider logs each code it issues with the person's claims (their address): not at info level.
        for name in ("werkzeug", "oidc_provider_mock"):
            logging.getLogger(name).setLevel(logging.WARNING)
        users = [oidc_provider_mock.User(sub=p.sub, claims={"name": p.name, "email": p.sub, "groups": list(p.groups)})
                 for p in DEMO_PEOPLE]
        app = oidc_provider_mock.app(user_claims=users, require_nonce=True, issue_refresh_token=False)
        self._server = werkzeug.serving.make_server(self.host, self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="oidc-provider", daemon=True)
        self._thread.start()
        return self.issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
