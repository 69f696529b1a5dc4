"""HTTP problems with a flat JSON body: `{"detail": "...", "errors": [{"path", "reason"}]}`, described in the
OpenAPI document by `ProblemBody` and `problem_responses`."""

from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:  # FastAPI loads only where an API is served: subscribers use `field_problems` too
    from fastapi import FastAPI

M = TypeVar("M", bound=BaseModel)


class FieldProblem(BaseModel):
    path: str
    reason: str


class ProblemBody(BaseModel):
    """Every refusal: what is wrong, and for invalid input each invalid field's path and reason."""

    detail: str
    errors: list[FieldProblem] | None = None


class Problem(Exception):
    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers


PROBLEM_DESCRIPTIONS = {
    401: "no bearer token, or one this service does not know",
    403: "the token may not act for this programme",
    404: "not found (or not visible to this token)",
    409: "conflicts with what was accepted before",
    413: "request body over the size limit",
    415: "the request body is not of the media type the operation takes",
    422: "invalid input: every invalid field's path and reason",
    503: "a service this request needs cannot be reached now",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems a route can answer with."""
    return {status: {"model": ProblemBody, "description": PROBLEM_DESCRIPTIONS[status]} for status in statuses}


def page_problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`problem_responses` for a route that serves a page: its problems are JSON all the same, which the
    document must say (FastAPI would give them the page's media type)."""
    schema = ProblemBody.model_json_schema()
    return {status: {"description": PROBLEM_DESCRIPTIONS[status], "content": {"application/json": {"schema": schema}}}
            for status in statuses}


def field_problems(exc: ValidationError) -> list[dict[str, str]]:
    """Every invalid field's path and reason, without the offending input (it may hold addresses)."""
    return [{"path": ".".join(str(p) for p in e["loc"]) or "<root>", "reason": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)]


def install_problem_handler(app: "FastAPI") -> None:
    from fastapi.exceptions import RequestValidationError

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        content: dict[str, Any] = {"detail": exc.detail}
        if exc.errors is not None:
            content["errors"] = exc.errors
        return JSONResponse(content, status_code=exc.status, headers=exc.headers)

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"path": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    app.add_exception_handler(Problem, handle)
    app.add_exception_handler(RequestValidationError, invalid_request)


async def read_model(request: Request, model: type[M], limit: int, what: str) -> M:
    """The request's JSON body as `model`, or 413 (over `limit` bytes) or 422 naming each invalid field (a
    body that is no JSON at all included: FastAPI's own parsing would answer 400)."""
    raw = await read_limited(request, limit)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise Problem(422, f"invalid {what}", field_problems(exc)) from exc


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, read as it streams in and refused (413) as soon as it passes `limit` bytes."""
    too_large = Problem(413, f"request body over {limit // 1024} KiB")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def read_form(request: Request, limit: int = 4096) -> dict[str, str]:
    """A small urlencoded form, each field's last value (413 past `limit` bytes); what does not decode is
    replaced, never an error of its own."""
    body = await read_limited(request, limit)
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def read_form_pairs(request: Request, limit: int) -> list[tuple[str, str]]:
    """An urlencoded form's fields in order, each value kept (an input emptied on purpose too; 413 past `limit`
    bytes); what does not decode is replaced, never an error of its own."""
    body = await read_limited(request, limit)
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


async def only_declared_query(request: Request) -> None:
    """A router dependency: a query parameter the operation does not declare is refused (422), not ignored, so
    that a typo (`dry_rn=true`) never does something else than the caller meant."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    declared: set[str] = set()
    pending = [dependant]
    while pending:  # the operation's own query parameters and those of its dependencies
        current = pending.pop()
        declared |= {param.alias for param in current.query_params}
        pending.extend(current.dependencies)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise Problem(422, "unknown query parameters", [
            {"path": f"query.{name}", "reason": f"not a parameter of this operation (it has: "
                                                f"{', '.join(sorted(declared)) or 'none'})"} for name in unknown])
