"""`build_app`: the FastAPI application of the agent service.

Routes: ``GET /health`` (liveness and the served model: checkpoint, cutoff, lineage id),
``GET /config``, ``POST /predict``, ``POST /reload``, ``GET /metrics``; OpenAPI at ``/docs``.
With a token, every route but ``/health`` and the docs needs ``Authorization: Bearer <token>``
(liveness probes carry no credentials; the docs reveal only the schema).

Errors are answers, never tracebacks (``errors``); the token and the body limit are checked
before a body is read (``middleware``).

`/predict` is a plain (sync) route: FastAPI runs it on its thread pool, so requests overlap
(the database read, features and the forward pass release the GIL in DuckDB, pandas and torch),
at most ``max_concurrent_predictions`` at a time; the others wait their turn. Database requests
share the universe's window frame of their range (``frames``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from plusultra_pipeline.serving.errors import install_error_handlers
from plusultra_pipeline.serving.frames import WindowFrames
from plusultra_pipeline.serving.holder import ModelHolder, ReloadFailed
from plusultra_pipeline.serving.metrics import CONTENT_TYPE, ServerMetrics
from plusultra_pipeline.serving.middleware import GuardAndMeasure
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
    install_error_handlers(app)
    routes: set[str] = set()  # filled below: the metric label of a request refused before routing
    app.add_middleware(GuardAndMeasure, metrics=metrics, max_body=settings.max_body_bytes, token=settings.token,
                       routes=routes)
    slots = threading.BoundedSemaphore(settings.max_concurrent_predictions)
    frames = WindowFrames(settings.frame_cache_entries)
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
                                 max_concurrent_predictions=settings.max_concurrent_predictions,
                                 frame_cache_entries=settings.frame_cache_entries),
                "auth": settings.token is not None}

    @app.post("/predict", response_model=PredictResponse, dependencies=guarded, responses=ERRORS,
              tags=["model"])
    def predict(request: PredictRequest) -> dict:
        """Positions, probabilities, expected returns and risk per symbol and decision day."""
        from plusultra_pipeline.serving.predictions import frame_columns, json_risk, run_prediction

        model = holder.current  # taken once: a reload meanwhile does not change this request's model
        with slots:  # more predictions at once than cores only add memory and latency: the rest queue
            t0 = time.perf_counter()
            result, in_sample, warnings = run_prediction(model, request, database, settings, frames)
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
