"""`build_app`: the FastAPI application of the agent service.

Routes: ``GET /health`` (liveness and the served model: checkpoint, cutoff, lineage id),
``GET /config``, ``POST /predict``, ``POST /reload``, ``GET /metrics``; OpenAPI at ``/docs``.
With a token, every route but ``/health`` and the docs needs ``Authorization: Bearer <token>``
(liveness probes carry no credentials; the docs reveal only the schema).

Errors are answers, never tracebacks: a request that fails validation or our checks is a 4xx
whose ``detail`` is one line starting with the field (``body.symbols: ...``) and whose ``field``
names it; a body over the size limit is a 413 before it is parsed; a failed reload is a 409 saying
the old model still serves. Anything unforeseen is logged with its traceback on the server and
answered with a one-line 500 naming only its type.

`/predict` is a plain (sync) route: FastAPI runs it on its thread pool, so requests overlap
(the database read, features and the forward pass release the GIL in DuckDB, pandas and torch),
at most ``max_concurrent_predictions`` at a time; the others wait their turn.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from plusultra_core.errors import PlusUltraError
from plusultra_pipeline.serving.errors import RequestError
from plusultra_pipeline.serving.holder import ModelHolder, ReloadFailed
from plusultra_pipeline.serving.metrics import CONTENT_TYPE, ServerMetrics
from plusultra_pipeline.serving.schemas import (
    ConfigResponse,
    ErrorResponse,
    HealthResponse,
    Limits,
    PredictRequest,
    PredictResponse,
    ReloadRequest,
    ReloadResponse,
)
from plusultra_pipeline.serving.settings import ServeSettings

log = logging.getLogger("plusultra.serve")
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 409, 413, 422, 503)}


def build_app(source, settings: ServeSettings, database: Path | None = None) -> FastAPI:
    """Load the first model from ``source`` (`StoreSource`/`CheckpointSource`) and build the app.

    A source that cannot load fails here, before the server binds a port.
    """
    metrics = ServerMetrics()
    holder = ModelHolder(source, on_load=metrics.on_load)
    metrics.bind(holder)
    started = time.monotonic()
    database = Path(database) if database is not None else None

    app = FastAPI(title="plusultra agent", version=_version(),
                  description="MarketNNPlusUltraAgent as a service: the frames and risk analytics of the "
                              "inference_frames asset, on demand.")
    app.state.holder, app.state.metrics, app.state.settings = holder, metrics, settings
    _install_error_handlers(app)
    routes: set[str] = set()  # filled below: the metric label of a request refused before routing
    app.add_middleware(_Measured, metrics=metrics, max_body=settings.max_body_bytes, token=settings.token,
                       routes=routes)
    slots = threading.BoundedSemaphore(settings.max_concurrent_predictions)
    # the middleware checks the token (before any body is read); this declares it in the OpenAPI schema
    guarded = [Depends(HTTPBearer(auto_error=False, description="PLUSULTRA_SERVE_TOKEN of the server"))]

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    def health() -> dict:
        """Liveness, and which model is serving (checkpoint, cutoff, lineage id, age)."""
        model = holder.current
        return {"status": "ok", "model": model.describe(), "checkpoint_age_seconds": model.age_seconds(),
                "uptime_seconds": round(time.monotonic() - started, 3)}

    @app.get("/config", response_model=ConfigResponse, dependencies=guarded, responses=ERRORS, tags=["service"])
    def config() -> dict:
        """The served model's inputs and the server's limits."""
        model = holder.current
        agent, side = model.agent, model.agent.sidecar
        return {"model": model.describe(), "feature_names": agent.feature_names,
                "context_length": agent.context_length, "horizon": side.get("horizon"),
                "history_rows": agent.history_rows, "return_column": agent.return_column, "zscore": agent.zscore,
                "risk_confidence": agent.risk_confidence, "risk_lookback": agent.risk_lookback,
                "database": str(database) if database else None, "stored_cutoffs": holder.source.cutoffs(),
                "limits": Limits(max_symbols=settings.max_symbols, max_days=settings.max_days,
                                 max_body_bytes=settings.max_body_bytes,
                                 max_concurrent_predictions=settings.max_concurrent_predictions),
                "auth": settings.token is not None}

    @app.post("/predict", response_model=PredictResponse, dependencies=guarded, responses=ERRORS,
              tags=["model"])
    def predict(request: PredictRequest) -> dict:
        """Positions, probabilities, expected returns and risk per symbol and decision day."""
        from plusultra_pipeline.serving.predictions import frame_columns, json_risk, run_prediction

        model = holder.current  # taken once: a reload meanwhile does not change this request's model
        with slots:  # more predictions at once than cores only add memory and latency: the rest queue
            t0 = time.perf_counter()
            result, in_sample, warnings = run_prediction(model, request, database, settings)
            metrics.predict.observe(time.perf_counter() - t0)
        metrics.predicted_rows.inc(len(result.frame))
        return {"model": model.describe(), "rows": len(result.frame), "data_version": result.data_version,
                "in_sample": in_sample, "warnings": warnings, "frame": frame_columns(result.frame),
                "risk": json_risk(result.risk)}

    @app.post("/reload", response_model=ReloadResponse, dependencies=guarded, responses=ERRORS, tags=["model"])
    def reload(request: ReloadRequest | None = None) -> dict:
        """Serve the store's newest cutoff, or the one named; a failure keeps the old model."""
        try:
            new, old = holder.reload(request.cutoff if request is not None else None)
        except ReloadFailed:
            metrics.reloads.labels("failed").inc()
            raise
        metrics.reloads.labels("ok").inc()
        log.info("reloaded: %s (lineage %s), was %s", new.checkpoint, new.lineage_id, old.checkpoint)
        return {"model": new.describe(), "previous": old.describe(),
                "changed": (new.lineage_id, new.checkpoint) != (old.lineage_id, old.checkpoint)}

    @app.get("/metrics", dependencies=guarded, responses=ERRORS, tags=["service"],
             response_class=Response)
    def prometheus() -> Response:
        """Prometheus text: requests, latencies, forward time, checkpoint age."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    routes.update(getattr(r, "path", "") for r in app.routes)
    return app


def _version() -> str:
    from plusultra_core import __version__

    return __version__


def _error(status: int, detail: str, field: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"detail": " ".join(detail.split()), "field": field}, status_code=status, headers=headers)


def _location(loc) -> str:
    return ".".join(str(p) for p in loc) or "body"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, str(exc), exc.field, headers)

    @app.exception_handler(ReloadFailed)
    async def reload_failed(request: Request, exc: ReloadFailed):
        return _error(409, str(exc), "body.cutoff")

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
        return _error(422, "; ".join(parts) + more, fields[0] if fields else None)

    @app.exception_handler(PlusUltraError)
    async def plusultra_error(request: Request, exc: PlusUltraError):
        return _error(422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")


OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")


class _Measured:
    """ASGI middleware: the bearer token and the body-size limit, both checked before the body is
    parsed (401, 413), and the request metrics per route."""

    def __init__(self, app, metrics: ServerMetrics, max_body: int, token: str | None, routes: set[str]):
        self.app, self.metrics, self.max_body, self.routes = app, metrics, max_body, routes
        self.token = token.encode() if token is not None else None

    def _authorised(self, scope) -> bool:
        if self.token is None or scope.get("path") in OPEN_PATHS:
            return True
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and secrets.compare_digest(given.strip(), self.token)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if not self._authorised(scope):
                response = _error(401, "header.authorization: missing or wrong bearer token "
                                       "(send 'Authorization: Bearer <token>')", "header.authorization",
                                  {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send_and_record)
                return
            declared = dict(scope.get("headers") or []).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._too_large(send_and_record, int(declared))
                return
            body, more = [], True
            size = 0
            while more:  # read the whole body once (FastAPI would too), stopping at the limit
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await self._too_large(send_and_record, size)
                    return
                body.append(chunk)
                more = message.get("more_body", False)
            payload = b"".join(body)
            sent = {"done": False}

            async def replay():
                if not sent["done"]:
                    sent["done"] = True
                    return {"type": "http.request", "body": payload, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", None)
            path = scope.get("path")
            # a route's path, never an arbitrary client path: the label set stays bounded
            endpoint = route or (path if path in self.routes else "unmatched")
            self.metrics.observe(endpoint, scope.get("method", ""), status["code"], time.perf_counter() - t0)

    async def _too_large(self, send, size: int) -> None:
        response = _error(413, f"body: request body is {size} bytes, over the limit of {self.max_body} bytes",
                          "body")
        await response({"type": "http"}, None, send)  # a JSONResponse never calls receive
