"""People and their sessions (pure): roles from the roles claim through the programme files, what each role
includes, the session cookie's idle and absolute limits, CSRF tokens, and where a sign-in may lead back to."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import Request, Response

from programs import Program, Role
from services.common.people import Person, person_from_claims, roles_from_claims
from services.common.sessions import Sessions
from services.common.signin import local_path

KEY = b"a-session-key-that-is-long-enough-too"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_programme_file_maps_the_claims_values_to_roles_and_other_groups_mean_nothing(fvm: Program) -> None:
    roles, unknown = roles_from_claims({"groups": ["fvm-lasare", "fvm-redaktorer", "alla-anstallda"]}, "groups",
                                       {"fvm": fvm})
    assert roles == {"fvm": frozenset({Role.READER, Role.EDITOR})} and unknown == []
    assert roles_from_claims({"groups": "fvm-godkannare budkavle-administratorer"}, "groups", {"fvm": fvm})[0] == {
        "fvm": frozenset({Role.APPROVER, Role.ADMIN})}  # one string of values, as some providers send
    assert roles_from_claims({"roles": ["fvm-lasare"]}, "groups", {"fvm": fvm}) == ({}, [])  # another claim
    assert roles_from_claims({"groups": 7}, "groups", {"fvm": fvm}) == ({}, [])


def test_a_value_naming_a_programme_and_a_role_counts_and_an_unknown_programme_is_ignored_and_logged_once(
        fvm: Program, caplog: pytest.LogCaptureFixture) -> None:
    claims = {"sub": "s1", "name": "Sara", "groups": ["fvm:approver", "okand:editor", "fvm:kung"]}
    with caplog.at_level(logging.WARNING):
        first = person_from_claims(claims, "groups", {"fvm": fvm})
        person_from_claims(claims, "groups", {"fvm": fvm})
    assert first.roles == {"fvm": frozenset({Role.APPROVER})}
    assert [r.getMessage() for r in caplog.records].count(
        "a roles claim names a programme that is not configured; ignored") == 1


def test_each_role_includes_what_it_should_and_nothing_more() -> None:
    def may(*roles: Role) -> set[Role]:
        person = Person("s", "S", {"fvm": frozenset(roles)})
        return {r for r in Role if person.may("fvm", r)}

    assert may(Role.MEMBER) == {Role.MEMBER}
    assert may(Role.READER) == {Role.MEMBER, Role.READER}
    assert may(Role.EDITOR) == {Role.MEMBER, Role.READER, Role.EDITOR}
    assert may(Role.APPROVER) == {Role.MEMBER, Role.READER, Role.APPROVER}
    assert may(Role.ADMIN) == set(Role)
    assert not Person("s", "S", {"fvm": frozenset({Role.ADMIN})}).may("fvis", Role.MEMBER)


def request_with(cookie: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                    "headers": [(b"cookie", cookie.encode())]})


async def test_a_session_ends_after_its_idle_limit_or_its_absolute_limit_and_moves_on_while_used() -> None:
    clock = Clock()
    sessions = Sessions(KEY, "https://budkavle.example.se", timedelta(minutes=30), timedelta(hours=8), clock=clock)
    assert sessions.cookie == "__Host-budkavle_session"  # https: Secure, this host only
    response = Response()
    opened = sessions.open(response, Person("anna", "Anna", {"fvm": frozenset({Role.READER})}))
    header = response.headers["set-cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    cookie = header.split(";")[0]
    for _ in range(20):  # used every 25 minutes: each page moves the idle limit on
        clock.now += timedelta(minutes=25)
        session = await sessions.read(request_with(cookie))
        if clock.now - opened.started >= timedelta(hours=8):
            assert session is None  # the absolute limit, however busy
            break
        assert session is not None and session.sid == opened.sid and session.person.roles == {"fvm": {Role.READER}}
        moved = Response()
        sessions.touch(moved, session)
        cookie = moved.headers["set-cookie"].split(";")[0]
    else:
        pytest.fail("the session never ended")
    idle = Response()
    sessions.open(idle, Person("bo", "Bo"))
    clock.now += timedelta(minutes=31)
    assert await sessions.read(request_with(idle.headers["set-cookie"].split(";")[0])) is None


async def test_a_tampered_or_malformed_session_cookie_is_no_session_and_csrf_tokens_are_per_session() -> None:
    sessions = Sessions(KEY, "http://bk", timedelta(minutes=30), timedelta(hours=8))
    response = Response()
    session = sessions.open(response, Person("anna", "Anna", {"fvm": frozenset({Role.READER})}))
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    payload, mac = value.split(".")
    other = Sessions(b"another-session-key-that-is-long-too", "http://bk", timedelta(minutes=30), timedelta(hours=8))
    forged = Response()
    other.open(forged, Person("anna", "Anna", {"fvm": frozenset({Role.ADMIN})}))
    for bad in (f"{payload}x.{mac}", forged.headers["set-cookie"].split(";")[0].split("=", 1)[1], "é.x", "", "a.b"):
        assert await sessions.read(request_with(f"budkavle_session={bad}")) is None, bad
    assert sessions.csrf_ok(session, sessions.csrf(session))
    second = sessions.open(Response(), Person("anna", "Anna"))
    assert not sessions.csrf_ok(second, sessions.csrf(session)) and not sessions.csrf_ok(session, "é")


@pytest.mark.parametrize(("asked", "goes"), [
    ("/insights/fvm/", "/insights/fvm/"), ("/intranet/items/1?x=1", "/intranet/items/1?x=1"),
    ("https://evil.example/", "/"), ("//evil.example/", "/"), ("/\\evil.example", "/"), (None, "/"), ("", "/"),
])
def test_a_sign_in_leads_back_only_to_a_path_on_this_site(asked: str | None, goes: str) -> None:
    assert local_path(asked) == goes
