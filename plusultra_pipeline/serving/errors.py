"""The one error type a route raises for a bad request: it names the field that was wrong."""

from __future__ import annotations

from plusultra_core.errors import PlusUltraError


class RequestError(PlusUltraError):
    """A request the server refuses: ``field`` (``body.symbols``, ``cutoff`` ...), an HTTP status."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status
