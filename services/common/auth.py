"""Systems' bearer tokens, scoped per programme and to a role, from BUDKAVLE_API_TOKENS
(`token=prog[|prog…][:role[+role…]],…`; the role is `publisher` unless the entry says otherwise).

A system token publishes (`publisher`), reads follow-up figures (`reader`) or does both and sees what
belongs to no programme (`admin`, e.g. a dead letter whose payload cannot be read). No token approves.
"""

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Header

from services.common.problems import Problem


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


@dataclass(frozen=True)
class Principal:
    #: A stable, non-secret handle for the token (a hash of it), used to scope idempotency keys: it stays
    #: the same when other tokens are added, removed or reordered.
    token_id: str
    programs: frozenset[str]
    roles: frozenset[TokenRole] = frozenset({TokenRole.PUBLISHER})

    def may(self, role: TokenRole) -> bool:
        """An admin token may do what a publisher and a reader may."""
        return role in self.roles or TokenRole.ADMIN in self.roles


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
