"""The directory import, through the gateway: an admin of every programme (a person through the console, or an
admin token) uploads the directory as CSV and reads the tailor's report of what it would change; a second
request applies that same file. The tailor owns the directory; the gateway checks who asks and passes it on."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request

from contracts.directory import (
    MAX_DIRECTORY_BYTES,
    DirectoryApplied,
    DirectoryReport,
    UndeliverableAddress,
    UndeliverableAddresses,
)
from programs import Program
from services.common.auth import Principal, TokenRole, author_of
from services.common.problems import Problem, only_declared_query, problem_responses, read_limited
from services.gateway.audit import AuditAction, AuditRegister, Entry

log = logging.getLogger(__name__)

#: Checks a directory file: (its text, who asks, their Authorization header) → the report. Raises
#: DirectoryUnavailable when the tailor cannot be asked.
DirectoryChecker = Callable[[str, str, str], Awaitable[DirectoryReport]]
#: Applies a checked file: (its import id, the Authorization header) → what the directory holds now, or None
#: when no checked file of that id waits.
DirectoryApplier = Callable[[str, str], Awaitable[DirectoryApplied | None]]
#: Lists the undeliverable addresses: (the Authorization header) → them. Raises DirectoryUnavailable.
UndeliverableLister = Callable[[str], Awaitable[list[UndeliverableAddress]]]
IMPORT_ID = r"^[0-9a-f]{32}$"


class DirectoryUnavailable(Exception):
    """The tailor, which owns the directory, cannot be asked now."""


def build_http(programs: Mapping[str, Program], caller_dependency: Any, check: DirectoryChecker,
               apply: DirectoryApplier, register: AuditRegister | None = None,
               undeliverable: UndeliverableLister | None = None) -> APIRouter:
    router = APIRouter(prefix="/v1/directory", tags=["directory"], dependencies=[Depends(only_declared_query)])
    Caller = Annotated[Principal, Depends(caller_dependency)]

    def admin_of_all(caller: Principal) -> None:
        if not caller.may_in_all(programs, TokenRole.ADMIN):
            raise Problem(403, "only an admin of every programme may import or read the directory (it serves them "
                               "all)")

    @router.post("/imports", response_model=DirectoryReport,
                 summary="Check a directory file (CSV) and report what applying it would change; nothing changes",
                 openapi_extra={"requestBody": {"required": True, "description": "the directory, UTF-8 CSV with "
                                "the header id,name,email,organisation,role,profession,area,municipality,options[,manager]",
                                "content": {"text/csv": {"schema": {"type": "string"}}}}},
                 responses=problem_responses(401, 403, 413, 415, 422, 503))
    async def check_file(request: Request, caller: Caller, authorization: Annotated[str, Header()]) -> DirectoryReport:
        admin_of_all(caller)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "text/csv":
            raise Problem(415, "send the directory as text/csv")
        body = await read_limited(request, MAX_DIRECTORY_BYTES)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Problem(422, "the file is not UTF-8 text", [{"path": "body", "reason": f"byte {exc.start} is "
                                                                                      "not UTF-8"}]) from exc
        try:
            return await check(text, author_of(caller), authorization)
        except DirectoryUnavailable as exc:
            raise Problem(503, f"cannot check the directory now: {exc}") from exc

    @router.get("/undeliverable", response_model=UndeliverableAddresses,
                summary="The people whose address takes no mail (it bounced), and why: left out of mail until the "
                        "directory gives them a new address", responses=problem_responses(401, 403, 422, 503))
    async def undeliverable_addresses(caller: Caller,
                                      authorization: Annotated[str, Header()]) -> UndeliverableAddresses:
        admin_of_all(caller)
        if undeliverable is None:
            raise Problem(503, "cannot read the directory now: no tailor is connected for it")
        try:
            return UndeliverableAddresses(addresses=tuple(await undeliverable(authorization)))
        except DirectoryUnavailable as exc:
            raise Problem(503, f"cannot read the directory now: {exc}") from exc

    @router.post("/imports/{import_id}/apply", response_model=DirectoryApplied,
                 summary="Apply a checked directory file: the directory becomes what its report said",
                 responses=problem_responses(401, 403, 404, 422, 503))
    async def apply_file(import_id: Annotated[str, Path(pattern=IMPORT_ID)], caller: Caller,
                         authorization: Annotated[str, Header()]) -> DirectoryApplied:
        admin_of_all(caller)
        try:
            applied = await apply(import_id, authorization)
        except DirectoryUnavailable as exc:
            raise Problem(503, f"cannot apply the directory now: {exc}") from exc
        if applied is None:
            raise Problem(404, "no checked directory file of that id is waiting (applied already, or too old)")
        log.info("directory replaced", extra={"import_id": import_id, "people": applied.people})
        if register is not None:
            await register.append(Entry(actor=author_of(caller), action=AuditAction.DIRECTORY_IMPORT, program=None,
                                        target=f"import:{import_id}", detail=f"{applied.people} people"))
        return applied

    return router
