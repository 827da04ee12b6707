"""Inference: restore a supervised checkpoint, predict over SQLite data, risk analytics, export.

- ``predict``: `load_supervised(path)`, `predict_frame(module, frame, features, context_length=...)`.
- ``risk``: `risk_analytics(predictions_for_day, returns_history)` (exposure, VaR / ES, volatility).
- ``agent``: `MarketNNPlusUltraAgent.from_checkpoint(path).predict(db, start, end)` -> `AgentResult`.
- ``export``: `export_predictions(db, frame, checkpoint_id)`, the only writer of the user's database.

Import the pieces from their modules; this initialiser stays light (no torch import).
"""
