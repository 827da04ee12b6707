"""What a server instance is allowed to do: request limits, bind address and the bearer token.

The token comes from the environment (``PLUSULTRA_SERVE_TOKEN``), never from a command-line flag
(which other users of the machine can read in the process list). Binding anything but a loopback
address without a token is refused: an unauthenticated model endpoint on a network is a mistake
nobody makes on purpose.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Mapping

from plusultra_core.errors import ConfigError

TOKEN_ENV = "PLUSULTRA_SERVE_TOKEN"
LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class ServeSettings:
    """Limits of one server. ``token`` None: no authentication (loopback only)."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_symbols: int = 1000            # per /predict request
    max_days: int = 366                # calendar days between date and end
    max_body_bytes: int = 8 << 20      # request bodies (caller-supplied bars are the big ones)
    max_concurrent_predictions: int = 4  # predictions computed at once; more requests queue
    frame_cache_entries: int = 4       # decision ranges whose universe window frame is kept (0: off)

    def __post_init__(self):
        for name in ("max_symbols", "max_days", "max_body_bytes", "max_concurrent_predictions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.frame_cache_entries, bool) or not isinstance(self.frame_cache_entries, int) \
                or self.frame_cache_entries < 0:
            raise ConfigError(f"frame_cache_entries must be an integer >= 0, got {self.frame_cache_entries!r}")
        if not (isinstance(self.port, int) and 0 <= self.port <= 65535):
            raise ConfigError(f"--port must be in 0..65535, got {self.port!r}")
        if self.token is not None and not self.token.strip():
            raise ConfigError(f"{TOKEN_ENV} is set but empty; unset it or give it a token")
        if self.token is None and not is_loopback(self.host):
            raise ConfigError(f"--host {self.host} is not a loopback address: set {TOKEN_ENV} to a bearer "
                              f"token (clients send 'Authorization: Bearer <token>') or bind 127.0.0.1")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0 and any other address."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token, or None when ``PLUSULTRA_SERVE_TOKEN`` is unset."""
    environ = os.environ if environ is None else environ
    return environ.get(TOKEN_ENV)
