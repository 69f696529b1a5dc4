"""A signed-in person's session: a signed cookie (HttpOnly, SameSite=Lax, Secure and `__Host-` on https)
that every person-facing service checks with the same key (BUDKAVLE_SESSION_KEY), without a lookup.

A session ends after `idle` without a request, or `absolute` after sign-in, whichever comes first; each page
a person opens moves the idle limit on (the cookie is made again, at most once a minute). Sign-in makes a new
session (a new id, whatever the browser had, whose session ends); sign-out clears the cookie and ends the
session for good: `ended` (each service's table of ended sessions, `ended_sessions`) refuses it, whoever still
has the cookie. Every form a signed-in person sends carries a CSRF token derived from the session id.
"""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response

from services.common.links import BadLink, LinkSigner
from services.common.people import Person

Clock = Callable[[], datetime]

SESSION = "session"
#: How often an active session's cookie is made again to move its idle limit on.
REFRESH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Session:
    sid: str
    person: Person
    started: datetime
    seen: datetime


class Sessions:
    def __init__(self, key: bytes, public_url: str, idle: timedelta, absolute: timedelta,
                 ended: Callable[[str], Awaitable[bool]] | None = None, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.signer = LinkSigner(key, clock)
        self.key = key
        self.secure = public_url.startswith("https://")
        # `__Host-` makes the browser keep the cookie only when it is Secure, for this host and path /.
        self.cookie = "__Host-budkavle_session" if self.secure else "budkavle_session"
        self.idle, self.absolute = idle, absolute
        self.ended = ended
        self.clock = clock

    def _value(self, sid: str, person: Person, started: datetime) -> str:
        now = self.clock()
        ttl = min(self.idle, started + self.absolute - now)
        return self.signer.sign(SESSION, {"sid": sid, "sub": person.sub, "nm": person.name, "ro": person.roles_json(),
                                          "st": str(int(started.timestamp())), "sn": str(int(now.timestamp()))}, ttl)

    def issue(self, person: Person) -> tuple[Session, str]:
        """A new session for `person` and its cookie's value, for a person acting without a browser (the
        embedded demo's approver, who approves the demo history through the API as themselves)."""
        now = self.clock()
        session = Session(secrets.token_urlsafe(18), person, now, now)
        return session, self._value(session.sid, person, now)

    def open(self, response: Response, person: Person) -> Session:
        """A new session (a new id, whatever the browser had before) for `person`, set on `response`."""
        now = self.clock()
        session = Session(secrets.token_urlsafe(18), person, now, now)
        self._set(response, self._value(session.sid, person, now))
        return session

    async def read(self, request: Request) -> Session | None:
        """The request's session, or None (none, forged, expired or ended)."""
        return await self.verify(request.cookies.get(self.cookie, ""))

    async def verify(self, value: str) -> Session | None:
        """The session a cookie's value holds (a page's own, or one a person-facing service passes on to act as
        that person), or None (forged, expired or ended)."""
        try:
            claims = self.signer.verify(SESSION, value)
            started = datetime.fromtimestamp(int(claims["st"]), UTC)
            seen = datetime.fromtimestamp(int(claims["sn"]), UTC)
            person = Person(sub=claims["sub"], name=claims["nm"], roles=Person.roles_from_json(claims["ro"]))
            sid = claims["sid"]
        except (BadLink, KeyError, ValueError, OverflowError):
            return None
        if started + self.absolute < self.clock() or (self.ended is not None and await self.ended(sid)):
            return None
        return Session(sid, person, started, seen)

    def expires_at(self, session: Session) -> datetime:
        """When the session ends at the latest, used or not."""
        return session.started + self.absolute

    def touch(self, response: Response, session: Session | None) -> None:
        """Move the session's idle limit on, when it was last moved more than a minute ago."""
        if session is not None and self.clock() - session.seen >= REFRESH_EVERY:
            self._set(response, self._value(session.sid, session.person, session.started))

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True, samesite="lax")

    def _set(self, response: Response, value: str) -> None:
        response.set_cookie(self.cookie, value, max_age=int(self.absolute.total_seconds()), path="/", httponly=True,
                            samesite="lax", secure=self.secure)

    def csrf(self, session: Session) -> str:
        """The token every form of this session carries."""
        return hmac.new(self.key, f"csrf:{session.sid}".encode(), hashlib.sha256).hexdigest()[:32]

    def csrf_ok(self, session: Session, presented: str) -> bool:
        return hmac.compare_digest(self.csrf(session).encode(), presented.encode("utf-8", "replace"))
