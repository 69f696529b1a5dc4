"""People: who a signed-in person is and what they may do in each programme (pure).

A person's roles come from one claim of their ID token (`groups` unless BUDKAVLE_OIDC_ROLES_CLAIM names
another), mapped in each programme file (`roles: {reader: [...], editor: [...], …}`). A value may also name a
programme and a role itself (`fvm:editor`, as some providers' application roles read); one that names a
programme Budkavle does not have is ignored, and logged once.
"""

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from programs import INCLUDED_IN, Program, Role

log = logging.getLogger(__name__)

#: `program:role`, a value that names both.
NAMED_ROLE = re.compile(r"^([a-z][a-z0-9_-]{1,31}):(" + "|".join(r.value for r in Role) + r")$")
_reported: set[str] = set()


@dataclass(frozen=True)
class Person:
    """A signed-in person: their subject at the provider, a name to greet them by, and their roles."""

    sub: str
    name: str
    roles: Mapping[str, frozenset[Role]] = field(default_factory=dict)

    def may(self, program: str, role: Role) -> bool:
        """True when one of the person's roles in `program` includes `role` (an editor may what a reader may)."""
        return bool(self.roles.get(program, frozenset()) & INCLUDED_IN[role])

    def programs(self, role: Role) -> frozenset[str]:
        return frozenset(p for p in self.roles if self.may(p, role))

    def roles_json(self) -> str:
        return json.dumps({p: sorted(r.value for r in rs) for p, rs in sorted(self.roles.items())}, separators=(",", ":"))

    @staticmethod
    def roles_from_json(text: str) -> dict[str, frozenset[Role]]:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("roles must be an object")
        return {str(p): frozenset(Role(r) for r in rs) for p, rs in data.items()}


def claim_values(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The roles claim as a list of strings: providers send a list, or one string of values."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str) and v]
    return []


def roles_from_claims(claims: Mapping[str, Any], claim: str,
                      programs: Mapping[str, Program]) -> tuple[dict[str, frozenset[Role]], list[str]]:
    """Each programme's roles for the holder of `claims`, and the values that named an unknown programme."""
    values = set(claim_values(claims, claim))
    roles: dict[str, set[Role]] = {}
    unknown: list[str] = []
    for code, program in programs.items():
        for role, mapped in program.roles.items():
            if values & set(mapped):
                roles.setdefault(code, set()).add(role)
    for value in sorted(values):
        named = NAMED_ROLE.match(value)
        if named is None:
            continue  # a group that means nothing here: people belong to many
        if named.group(1) in programs:
            roles.setdefault(named.group(1), set()).add(Role(named.group(2)))
        else:
            unknown.append(value)
    return {p: frozenset(rs) for p, rs in roles.items()}, unknown


def person_from_claims(claims: Mapping[str, Any], claim: str, programs: Mapping[str, Program]) -> Person:
    """The person an ID token's verified claims describe."""
    roles, unknown = roles_from_claims(claims, claim, programs)
    for value in unknown:
        if value not in _reported:
            _reported.add(value)
            log.warning("a roles claim names a programme that is not configured; ignored", extra={"value": value})
    sub = str(claims["sub"])
    name = claims.get("name") or claims.get("preferred_username") or sub
    return Person(sub=sub, name=str(name)[:200], roles=roles)
