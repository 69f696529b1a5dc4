"""Bearer tokens scoped per programme, from BUDKAVLE_API_TOKENS (`token=prog[|prog…],…`)."""

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from services.common.problems import Problem


class TokenConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    #: A stable, non-secret handle for the token (a hash of it), used to scope idempotency keys: it stays
    #: the same when other tokens are added, removed or reordered.
    token_id: str
    programs: frozenset[str]


def parse_tokens(spec: str) -> dict[str, frozenset[str]]:
    tokens: dict[str, frozenset[str]] = {}
    for n, entry in enumerate(e.strip() for e in spec.split(",") if e.strip()):
        token, sep, programs = entry.partition("=")
        if not sep or not token or not programs:
            raise TokenConfigError(f"BUDKAVLE_API_TOKENS entry {n + 1} must read token=program[|program…]")
        if len(token) < 8:
            raise TokenConfigError(f"BUDKAVLE_API_TOKENS entry {n + 1}: token shorter than 8 characters")
        names = frozenset(p.strip() for p in programs.split("|") if p.strip())
        if not names or any(not re.match(r"^[a-z][a-z0-9_-]{1,31}$", p) for p in names):
            raise TokenConfigError(f"BUDKAVLE_API_TOKENS entry {n + 1}: bad programme name")
        if token in tokens:
            raise TokenConfigError(f"BUDKAVLE_API_TOKENS entry {n + 1}: token given twice")
        tokens[token] = names
    return tokens


def token_handle(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]


class TokenAuthority:
    def __init__(self, tokens: dict[str, frozenset[str]]) -> None:
        self._tokens = list(tokens.items())

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        presented_b = presented.strip().encode()
        found: Principal | None = None
        for token, programs in self._tokens:
            if hmac.compare_digest(token.encode(), presented_b):  # constant time per candidate
                found = Principal(token_id=token_handle(token), programs=programs)
        return found


def bearer_caller(authority: TokenAuthority) -> Callable[[str | None], Principal]:
    """A FastAPI dependency: the caller of a request, or 401 (with `WWW-Authenticate: Bearer`)."""
    def caller(authorization: Annotated[str | None, Header()] = None) -> Principal:
        found = authority.authenticate(authorization)
        if found is None:
            raise Problem(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
        return found

    return caller
