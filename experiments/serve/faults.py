"""Faults serve-sim injects on purpose, per request, from a seeded stream (a retry can succeed).

Kinds: ``rate_limit`` (429 with Retry-After), ``server_error`` (500/503), ``timeout`` (hangs
``hang_s`` then 504, past a client's timeout), ``malformed`` (a 200 whose JSON body is cut
off) and ``drop`` (the connection is closed with no reply). Each fired fault is counted, so
a test can check that every kind fired and was handled.
"""

from __future__ import annotations

import asyncio
import random

from pydantic import Field

from experiments.serve.exchange import Response
from protocols.config import FaultSpec

KINDS = ("rate_limit", "server_error", "timeout", "malformed", "drop")


class ServerFaults(FaultSpec):
    """``FaultSpec`` plus the server-only ``drop`` (connection closed without a reply)."""

    drop: float = Field(default=0.0, ge=0.0, le=1.0)


def parse_faults(text: str) -> ServerFaults:
    """``rate_limit=0.1,server_error=0.05,timeout=0.02,malformed=0.01,drop=0.01`` -> ServerFaults."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"fault {part[:40]!r} is not name=rate")
        if name not in KINDS:
            raise ValueError(f"unknown fault {name[:40]!r}; known: {sorted(KINDS)}")
        try:
            values[name] = float(value)
        except ValueError:
            raise ValueError(f"fault {name!r}: rate {value[:40]!r} is not a number") from None
    return ServerFaults(**values)


class FaultInjector:
    """Draws a fault (or none) per request and serves it."""

    def __init__(self, faults: ServerFaults, seed: int, retry_after_s: float, hang_s: float) -> None:
        self.faults = faults
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self._rng = random.Random(seed)
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._rates = [(name, float(getattr(faults, name))) for name in KINDS]

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        u = self._rng.random()
        for name, rate in self._rates:
            if u < rate:
                self.counts[name] += 1
                return name
            u -= rate
        return None

    async def serve(self, fault: str) -> Response:
        """The reply (or the silence) of an injected fault."""
        from experiments.serve.reply import error_response

        match fault:
            case "drop":  # the connection is closed with no reply
                return Response(drop=True)
            case "rate_limit":
                response = error_response(429, "simulated rate limit", "rate_limit_exceeded")
                response.headers["Retry-After"] = f"{self.retry_after_s:g}"
                return response
            case "server_error":
                status = self._rng.choice((500, 503))
                return error_response(status, "simulated server error", "server_error")
            case "timeout":
                await asyncio.sleep(self.hang_s)
                return error_response(504, "simulated timeout", "timeout")
        return Response(200, b'{"id": "cmpl-broken", "choices": [{"te')
