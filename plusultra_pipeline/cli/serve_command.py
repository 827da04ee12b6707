"""``plusultra serve``: the agent as an HTTP service (FastAPI app, run by uvicorn).

``--store ROOT`` (default: the pipeline settings' store) serves the newest cutoff whose
supervised checkpoints are complete for every configured seed -- the seed ensemble the
`inference_frames` asset serves -- and ``POST /reload`` moves to a newer or a named cutoff of the
same store. ``--checkpoint CKPT`` serves one file instead. The database defaults to the
settings' (store mode) or the checkpoint's ``data.db_path``. A bad flag, an empty store, a corrupt
checkpoint, or a non-loopback ``--host`` without ``PLUSULTRA_SERVE_TOKEN`` fails in one line
before anything binds.
"""

from __future__ import annotations

from pathlib import Path

from plusultra_core.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve the agent over HTTP (/health /config /predict /reload /metrics)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--checkpoint", default=None, help="serve this supervised checkpoint (.pt with its sidecar)")
    what.add_argument("--store", default=None, help="serve the newest cutoff of this store (default: the settings' store)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds of a store cutoff's ensemble "
                                                "(default: the settings' training.seeds)")
    p.add_argument("--db", default=None, help="SQLite market database predictions read (default: see above)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s; any other needs "
                                                       "PLUSULTRA_SERVE_TOKEN)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--max-symbols", type=int, default=1000, help="symbols per request (default: %(default)s)")
    p.add_argument("--max-days", type=int, default=366, help="calendar days per request range (default: %(default)s)")
    p.add_argument("--max-body-mb", type=float, default=8.0, help="request body limit in MiB (default: %(default)s)")
    p.add_argument("--max-concurrent", type=int, default=4,
                   help="predictions computed at once; more requests wait (default: %(default)s)")
    p.add_argument("--frame-cache", type=int, default=4,
                   help="decision ranges whose universe window frame is kept for later requests; 0 reads "
                        "per request (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(handler=_serve)


def server_from_args(args):
    """``(app, ServeSettings, description)`` from parsed ``serve`` arguments (no port bound yet)."""
    from plusultra_pipeline.serving.app import build_app
    from plusultra_pipeline.serving.holder import CheckpointSource, StoreSource
    from plusultra_pipeline.serving.settings import ServeSettings, token_from_env

    settings = ServeSettings(host=args.host, port=args.port, token=token_from_env(),
                             max_symbols=args.max_symbols, max_days=args.max_days,
                             max_body_bytes=int(args.max_body_mb * (1 << 20)),
                             max_concurrent_predictions=args.max_concurrent,
                             frame_cache_entries=args.frame_cache)
    if args.checkpoint:
        from plusultra_core.training.checkpoints import read_sidecar

        source = CheckpointSource(args.checkpoint)
        database = args.db or (((read_sidecar(args.checkpoint) if Path(args.checkpoint).is_file() else {})
                                .get("config") or {}).get("data") or {}).get("db_path")
    else:
        from plusultra_pipeline.settings import load_settings

        pipeline = load_settings()
        source = StoreSource(args.store or pipeline.store_path, _seeds(args.seeds) or pipeline.training.seeds)
        database = args.db or str(pipeline.database_path)
    if database is not None and not Path(database).is_file():
        raise ConfigError(f"--db {database}: no such database file")
    app = build_app(source, settings, database=database)
    model = app.state.holder.current
    return app, settings, f"{source} (cutoff {model.cutoff}, lineage {model.lineage_id})"


def _seeds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers >= 0, e.g. 0,1,2")
    return tuple(int(p) for p in parts)


def _serve(args) -> int:
    import uvicorn

    app, settings, described = server_from_args(args)
    print(f"plusultra serve: {described} on http://{settings.host}:{settings.port} "
          f"(docs at /docs, auth {'on' if settings.token else 'off'})", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0
