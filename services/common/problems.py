"""HTTP problems with a flat JSON body: `{"detail": "...", "errors": [{"path", "reason"}]}`."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class Problem(Exception):
    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers


def install_problem_handler(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        content: dict[str, Any] = {"detail": exc.detail}
        if exc.errors is not None:
            content["errors"] = exc.errors
        return JSONResponse(content, status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(Problem, handle)
