"""``plusultra serve``: `MarketNNPlusUltraAgent` behind an HTTP API (FastAPI, run by uvicorn).

- ``settings``: `ServeSettings` (limits, bind address, the bearer token from the environment).
- ``schemas``: the typed request/response models (pydantic) that the OpenAPI page at ``/docs`` shows.
- ``holder``: where models come from (the store by cutoff, or one checkpoint) and `ModelHolder`,
  which swaps the served model atomically on reload.
- ``predictions``: one ``/predict`` request -> the agent's frame and risk, from the database or
  from bars the caller sent.
- ``metrics``: the Prometheus collectors behind ``/metrics``.
- ``errors``: `RequestError` (names the field) and how every exception becomes a one-line answer.
- ``middleware``: the bearer token and the body-size limit before any body is read; request metrics.
- ``app``: `build_app`, the routes.
"""
