"""Systems' bearer tokens, scoped per programme and to a role, from BUDKAVLE_API_TOKENS
(`token=prog[|prog…][:role[+role…]],…`; the role is `publisher` unless the entry says otherwise).

A system token publishes (`publisher`), reads follow-up figures (`reader`) or does both and sees what
belongs to no programme (`admin`, e.g. a dead letter whose payload cannot be read). No token approves.
"""

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Header, Request

from programs import Role
from services.common.people import Person
from services.common.problems import Problem
from services.common.sessions import Sessions


class TokenConfigError(ValueError):
    pass


class TokenRole(StrEnum):
    PUBLISHER = "publisher"
    READER = "reader"
    ADMIN = "admin"


@dataclass(frozen=True)
class Grant:
    programs: frozenset[str]
    roles: frozenset[TokenRole]


#: What a signed-in person's role in a programme lets them do there through the API: an editor publishes (an
#: admin too), a reader reads; only a token or an admin sees what belongs to no programme.
PERSON_ROLE: dict[TokenRole, Role] = {TokenRole.PUBLISHER: Role.EDITOR, TokenRole.READER: Role.READER,
                                      TokenRole.ADMIN: Role.ADMIN}


@dataclass(frozen=True)
class Principal:
    """Who calls: a system's token (its programmes and roles), or a signed-in person acting through a
    person-facing service (`person`: their roles per programme, as the programme files map them)."""

    #: A stable, non-secret handle for the caller (a hash of the token, or of the person's subject), used to
    #: scope idempotency keys: it stays the same when other tokens are added, removed or reordered.
    token_id: str
    programs: frozenset[str]
    roles: frozenset[TokenRole] = frozenset({TokenRole.PUBLISHER})
    person: Person | None = None

    @classmethod
    def of_person(cls, person: Person) -> "Principal":
        """A person: the programmes they may read (or more), and no role that holds across programmes."""
        digest = hashlib.sha256(person.sub.encode()).hexdigest()[:32]
        return cls(token_id=f"person:{digest}", programs=person.programs(Role.READER), roles=frozenset(),
                   person=person)

    def may(self, role: TokenRole) -> bool:
        """An admin token may do what a publisher and a reader may (a person: only per programme, `may_in`)."""
        return role in self.roles or TokenRole.ADMIN in self.roles

    def may_in_all(self, programs: Iterable[str], role: TokenRole) -> bool:
        """May the caller act in `role` for every one of `programs` (what serves them all: the directory)?"""
        return all(self.may_in(code, role) for code in programs)

    def may_in(self, program: str, role: TokenRole) -> bool:
        """May the caller act in `role` for `program`?"""
        if self.person is not None:
            return self.person.may(program, PERSON_ROLE[role])
        return program in self.programs and self.may(role)


def author_of(caller: Principal) -> str:
    """Who did something, as records name them: the person's subject, or the token's handle."""
    return caller.person.sub if caller.person is not None else f"token:{caller.token_id}"


def parse_tokens(spec: str) -> dict[str, Grant]:
    tokens: dict[str, Grant] = {}
    for n, entry in enumerate(e.strip() for e in spec.split(",") if e.strip()):
        where = f"BUDKAVLE_API_TOKENS entry {n + 1}"
        token, sep, scope = entry.partition("=")
        programs, colon, role_list = scope.partition(":")
        if not sep or not token or not programs or (colon and not role_list):
            raise TokenConfigError(f"{where} must read token=program[|program…][:role[+role…]]")
        if len(token) < 8:
            raise TokenConfigError(f"{where}: token shorter than 8 characters")
        names = frozenset(p.strip() for p in programs.split("|") if p.strip())
        if not names or any(not re.match(r"^[a-z][a-z0-9_-]{1,31}$", p) for p in names):
            raise TokenConfigError(f"{where}: bad programme name")
        try:
            roles = frozenset(TokenRole(r.strip()) for r in role_list.split("+")) if role_list else frozenset(
                {TokenRole.PUBLISHER})
        except ValueError:
            known = ", ".join(r.value for r in TokenRole)
            raise TokenConfigError(f"{where}: unknown role in {role_list!r} (a token may be {known}; "
                                   "only a person approves)") from None
        if token in tokens:
            raise TokenConfigError(f"{where}: token given twice")
        tokens[token] = Grant(names, roles)
    return tokens


def token_handle(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]


class TokenAuthority:
    def __init__(self, tokens: dict[str, Grant]) -> None:
        self._tokens = list(tokens.items())

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        presented_b = presented.strip().encode()
        found: Principal | None = None
        for token, grant in self._tokens:
            if hmac.compare_digest(token.encode(), presented_b):  # constant time per candidate
                found = Principal(token_id=token_handle(token), programs=grant.programs, roles=grant.roles)
        return found


def bearer_caller(authority: TokenAuthority) -> Callable[[str | None], Principal]:
    """A FastAPI dependency: the caller of a request, or 401 (with `WWW-Authenticate: Bearer`)."""
    def caller(authorization: Annotated[str | None, Header()] = None) -> Principal:
        found = authority.authenticate(authorization)
        if found is None:
            raise Problem(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
        return found

    return caller


def caller_of(authority: TokenAuthority, sessions: Sessions | None,
              writes_need_csrf: bool = True) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller of a request, or 401. A system by its bearer token; a signed-in person
    through a person-facing service (the console), which passes on their session
    (`Authorization: Session <the session cookie's value>`, only where `sessions` is given). A person's write
    carries their session's CSRF token (`X-CSRF-Token`), as the form they sent did, or is refused (403);
    `writes_need_csrf=False` only for an internal API whose POSTs write nothing (the tailor's plans)."""
    bearer = bearer_caller(authority)

    async def caller(request: Request, authorization: Annotated[str | None, Header()] = None,
                     x_csrf_token: Annotated[str | None, Header(max_length=200)] = None) -> Principal:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "session" or sessions is None:
            return bearer(authorization)
        session = await sessions.verify(value.strip())
        if session is None:
            raise Problem(401, "the session has ended, or is not known", headers={"WWW-Authenticate": "Bearer"})
        if (writes_need_csrf and request.method not in ("GET", "HEAD")
                and not sessions.csrf_ok(session, x_csrf_token or "")):
            raise Problem(403, "the form's CSRF token is missing or wrong: nothing was written")
        return Principal.of_person(session.person)

    return caller
