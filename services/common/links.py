"""Signed links in messages (preference centre, one-click unsubscribe, feedback and counted reads):
a token carries its purpose, its claims and its expiry, HMAC-signed with a key from the environment, so
the service that receives the click trusts it without a lookup and a forged or altered one is refused.

A token reads `<payload>.<signature>`, both base64url: short enough for a List-Unsubscribe header.
"""

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

Clock = Callable[[], datetime]

#: The purpose of the links in newsletters and digests: the email service signs them (claims program,
#: person, audience), the preference centre checks them.
PREFERENCES = "prefs"

#: The purpose of the follow-up links (one-click answers, counted "Läs mer"): signed by the tailor for what
#: a whole group sees (a Teams card, an intranet item) and by the email service for each person's own mail,
#: checked by the insights service. Half a year to answer; the insights service keeps answers no longer
#: than its retention allows either way.
FEEDBACK = "fb"
FEEDBACK_TTL = timedelta(days=180)


def feedback_claims(program: str, event_id: str, audience_id: str, person: str | None = None) -> dict[str, str]:
    """A follow-up link's claims: the event, the target group it reached, and for a person's own mail, the
    person (short keys: the token sits in up to six links of every message)."""
    claims = {"pr": program, "ev": event_id, "au": audience_id}
    if person is not None:
        claims["pe"] = person
    return claims


class BadLink(Exception):
    """A token that cannot be trusted. `expired` tells an old link from a forged or altered one."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, key: bytes, clock: Clock = lambda: datetime.now(UTC)) -> None:
        if len(key) < 32:
            raise ValueError("the link key must be at least 32 bytes")
        self.key = key
        self.clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode("ascii"), hashlib.sha256).digest()[:18])

    def sign(self, purpose: str, claims: Mapping[str, str], ttl: timedelta) -> str:
        body = {"p": purpose, "e": int((self.clock() + ttl).timestamp()), **claims}
        payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, purpose: str, token: str) -> dict[str, str]:
        """The token's claims; BadLink when it is malformed, forged, altered, for another purpose or expired."""
        payload, sep, mac = token.partition(".")
        # Every token Budkavle makes is ASCII: anything else (`/r/é.x`) is refused here, before it is encoded.
        if not sep or len(token) > 2000 or not token.isascii() or not hmac.compare_digest(
                mac.encode(), self._mac(payload).encode()):
            raise BadLink("the link is not one Budkavle made, or it has been altered")
        try:
            body = json.loads(_unb64(payload))
        except ValueError as exc:
            raise BadLink("the link is malformed") from exc
        if not isinstance(body, dict) or body.get("p") != purpose or not isinstance(body.get("e"), int):
            raise BadLink("the link is for something else")
        if body["e"] < self.clock().timestamp():
            raise BadLink("the link has expired", expired=True)
        return {k: str(v) for k, v in body.items() if k not in ("p", "e")}


def link_key(configured: str, data_dir: Path, embedded: bool) -> bytes:
    """The key from `BUDKAVLE_LINK_KEY`; in embedded mode one is made once and kept in the data directory."""
    return kept_key(configured, data_dir, embedded, "link-key", "BUDKAVLE_LINK_KEY", "signs the links in messages")


def session_key(configured: str, data_dir: Path, embedded: bool) -> bytes:
    """The key from `BUDKAVLE_SESSION_KEY` that signs people's sessions; in embedded mode made once and kept."""
    return kept_key(configured, data_dir, embedded, "session-key", "BUDKAVLE_SESSION_KEY",
                    "signs the sessions of signed-in people")


def kept_key(configured: str, data_dir: Path, embedded: bool, file: str, variable: str, purpose: str) -> bytes:
    """A configured secret, or in embedded mode one made once and kept in `<data dir>/<file>`."""
    if configured:
        if len(configured.encode()) < 32:
            raise SystemExit(f"{variable} is shorter than 32 characters")
        return configured.encode()
    if not embedded:
        raise SystemExit(f"{variable} is not set (a secret of at least 32 characters that {purpose})")
    return kept_secret(data_dir, file).encode()


def kept_secret(data_dir: Path, name: str, length: int = 32) -> str:
    """A secret of the embedded mode, made once (at least `length` characters) and kept in `<data dir>/<name>`,
    readable by its owner only: the link and session keys, the demo and metrics tokens."""
    path = data_dir / name
    secret = path.read_text().strip() if path.is_file() else ""
    if len(secret) < length:
        secret = secrets.token_urlsafe(length * 3 // 2)
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secret + "\n")
        path.chmod(0o600)
    return secret
