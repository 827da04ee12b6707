"""``plusultra serve``: `MarketNNPlusUltraAgent` behind an HTTP API (FastAPI, run by uvicorn).

- ``settings``: `ServeSettings` (limits, bind address, the bearer token from the environment).
- ``schemas``: the typed request/response models (pydantic) that the OpenAPI page at ``/docs`` shows.
- ``holder``: where models come from (the store by cutoff, or one checkpoint) and `ModelHolder`,
  which swaps the served model atomically on reload.
- ``predictions``: one ``/predict`` request -> the agent's frame and risk, from the database or
  from bars the caller sent.
- ``metrics``: the Prometheus collectors behind ``/metrics``.
- ``app``: `create_app`, the routes and how errors become 4xx answers naming the field.
"""
