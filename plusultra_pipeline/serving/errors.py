"""How a refused request is answered: `RequestError` names the field; `install_error_handlers`
turns every exception into a one-line JSON answer.

A request that fails pydantic validation or our checks is a 4xx whose ``detail`` is one line
starting with the field (``body.symbols: ...``) and whose ``field`` names it; a failed reload is a
409 saying which model still serves; any other plusultra error is a 422 with its message.
Anything unforeseen is logged with its traceback on the server and answered with a one-line 500
naming only its type -- never a traceback to the client.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from plusultra_core.errors import PlusUltraError

log = logging.getLogger("plusultra.serve")


class RequestError(PlusUltraError):
    """A request the server refuses: ``field`` (``body.symbols``, ``cutoff`` ...), an HTTP status."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


def answer(status: int, detail: str, field: str | None = None, headers=None) -> JSONResponse:
    """The JSON error body every refusal has: ``{"detail": <one line>, "field": <the field or null>}``."""
    return JSONResponse({"detail": " ".join(detail.split()), "field": field}, status_code=status, headers=headers)


def _location(loc) -> str:
    return ".".join(str(p) for p in loc) or "body"


def install_error_handlers(app) -> None:
    """Make every exception an answer (see the module docstring); unforeseen ones are logged."""
    from plusultra_pipeline.serving.holder import ReloadFailed

    @app.exception_handler(RequestError)
    async def requestanswer(request: Request, exc: RequestError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return answer(exc.status, str(exc), exc.field, headers)

    @app.exception_handler(ReloadFailed)
    async def reload_failed(request: Request, exc: ReloadFailed):
        return answer(409, str(exc), "body.cutoff")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        parts = []
        fields = []
        for err in errors[:5]:
            where, msg = _location(err.get("loc", ())), err.get("msg", "invalid")
            if err.get("type") == "json_invalid":  # loc is ("body", <character offset>)
                where = "body"
                msg = f"invalid JSON at character {err['loc'][-1]} ({(err.get('ctx') or {}).get('error', 'parse error')})"
            fields.append(where)
            parts.append(f"{where}: {msg}")
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        return answer(422, "; ".join(parts) + more, fields[0] if fields else None)

    @app.exception_handler(PlusUltraError)
    async def plusultraanswer(request: Request, exc: PlusUltraError):
        return answer(422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def httpanswer(request: Request, exc: StarletteHTTPException):
        return answer(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(500, f"internal error ({type(exc).__name__}); the server log has the details")
