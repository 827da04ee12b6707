"""ASGI middleware in front of every route: the bearer token and the body-size limit, both
checked before the body is read (401, 413), and the request metrics per route and status.

Checking here, not in a FastAPI dependency, matters for both: FastAPI parses the body before it
resolves dependencies, so an unauthenticated caller could otherwise make the server parse (and
answer about) any body, and an oversized one would be read whole first. A body without a
``Content-Length`` (chunked) is counted while it is read.
"""

from __future__ import annotations

import secrets
import time

from plusultra_pipeline.serving.errors import answer
from plusultra_pipeline.serving.metrics import ServerMetrics

OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")


class GuardAndMeasure:
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
                response = answer(401, "header.authorization: missing or wrong bearer token "
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
        response = answer(413, f"body: request body is {size} bytes, over the limit of {self.max_body} bytes",
                          "body")
        await response({"type": "http"}, None, send)  # a JSONResponse never calls receive
