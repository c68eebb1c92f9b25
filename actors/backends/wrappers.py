"""Backend wrappers that are themselves backends: retry, rate limit, in-flight bound.

Each wraps an inner ``Backend`` and keeps its interface, so a chain is built by
nesting (see ``actors.backends.factory``). None of them raises for a model-side
problem; they pass ``Failure`` replies through, counting attempts on the way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from actors.backends.base import Wrapper
from protocols.interfaces import Backend
from protocols.messages import Completion, CompletionRequest, Failure

Sleep = Callable[[float], Awaitable[None]]


class RetryBackend(Wrapper):
    """Retries retryable failures with exponential backoff and full jitter, honouring Retry-After.

    Attempt ``n`` (0-based) waits ``uniform(0, min(max_delay_s, base_delay_s * 2**n))``, or
    the server's Retry-After if that is longer (capped at ``max_retry_after_s``). Waits are
    multiplied by ``delay_scale``: 1 for real servers, the simulator's ``time_scale`` for
    ``sim`` (whose faults happen in simulated time; 0 means retry at once). The final reply
    carries ``attempts`` = the number of calls made, so run summaries can count retries.
    """

    def __init__(
        self,
        inner: Backend,
        max_retries: int,
        *,
        base_delay_s: float = 0.5,
        max_delay_s: float = 20.0,
        max_retry_after_s: float = 120.0,
        delay_scale: float = 1.0,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.inner = inner
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.max_retry_after_s = max_retry_after_s
        self.delay_scale = delay_scale
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.retries = 0
        """Retries made by this wrapper over its lifetime (for stats and benchmarks)."""

    def delay(self, attempt: int, failure: Failure) -> float:
        """Seconds to wait before retry number ``attempt + 1`` after ``failure``."""
        cap = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        wait = self._rng.uniform(0.0, cap)
        if failure.retry_after_s is not None:
            wait = max(wait, min(failure.retry_after_s, self.max_retry_after_s))
        return wait * self.delay_scale

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        attempt = 0
        while True:
            reply = await self.inner.complete(request)
            calls = attempt + reply.attempts
            if isinstance(reply, Completion) or not reply.retryable or attempt >= self.max_retries:
                return reply if calls == reply.attempts else reply.model_copy(update={"attempts": calls})
            wait = self.delay(attempt, reply)
            if wait > 0:
                await self._sleep(wait)
            attempt += 1
            self.retries += 1


class TokenBucket:
    """A refilling budget that may go into debt, so a cost larger than the burst never deadlocks.

    ``acquire(cost)`` waits (FIFO) until the level reaches ``min(cost, capacity)`` and then
    subtracts ``cost``; ``adjust(delta)`` corrects the level once the true cost is known.
    ``clock`` and ``sleep`` are injectable together so tests drive the bucket in fake time
    (a wall-clock test of a rate limiter flakes on a loaded machine).
    """

    def __init__(
        self,
        per_minute: float,
        burst_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"rate must be > 0 per minute, got {per_minute!r}")
        self.rate_per_s = per_minute / 60.0
        self.capacity = max(1.0, self.rate_per_s * burst_s)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    async def acquire(self, cost: float) -> None:
        async with self._lock:
            need = min(cost, self.capacity)
            # A microsecond's worth of slack: after sleeping exactly the deficit, float rounding
            # can leave the level a hair short, and a clock too coarse to move for a wait that
            # small (a large monotonic reading, a fake clock) would spin forever.
            slack = self.rate_per_s * 1e-6
            self._refill()
            while self.level < need - slack:
                await self._sleep((need - self.level) / self.rate_per_s)
                self._refill()
            self.level -= cost

    def adjust(self, delta: float) -> None:
        """Add ``delta`` to the level (negative: more was spent than reserved)."""
        self._refill()
        self.level = min(self.capacity, self.level + delta)


def estimate_tokens(request: CompletionRequest) -> int:
    """A pre-call token estimate (4 characters a token, plus the completion budget)."""
    chars = len(request.prompt or "") + sum(len(m.content) for m in request.messages)
    return chars // 4 + (request.max_tokens or 256)


class RateLimitBackend(Wrapper):
    """Keeps calls under a requests-per-minute and/or tokens-per-minute budget.

    Tokens are reserved from an estimate before the call and corrected from the
    reply's reported usage afterwards. Every attempt passes through here (the
    retry wrapper sits outside), so retries spend budget as they do at the provider.
    """

    def __init__(
        self,
        inner: Backend,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.requests = TokenBucket(requests_per_minute, burst_s, clock, sleep) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, burst_s, clock, sleep) if tokens_per_minute else None

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        if self.requests is not None:
            await self.requests.acquire(1.0)
        reserved = estimate_tokens(request)
        if self.tokens is not None:
            await self.tokens.acquire(reserved)
        reply = await self.inner.complete(request)
        if self.tokens is not None and reply.usage.total_tokens:
            self.tokens.adjust(reserved - reply.usage.total_tokens)
        return reply


class InFlightBackend(Wrapper):
    """Bounds the number of calls in flight to the inner backend."""

    def __init__(self, inner: Backend, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        self.inner = inner
        self.max_in_flight = max_in_flight
        self._gate: asyncio.Semaphore | None = None

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        # Created lazily so it belongs to the loop that uses it (the actor's loop).
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_in_flight)
        async with self._gate:
            return await self.inner.complete(request)


class ScrubBackend(Wrapper):
    """Masks the API key, in every encoding (``store.secret_forms``), in whatever the inner backend returns.

    A server may echo the key (in an error body, in a debugging reply); nothing
    downstream (results, store, logs) must ever hold it. Sits right around the base
    backend, so the store records scrubbed completions too.
    """

    def __init__(self, inner: Backend, secret: str) -> None:
        from actors.backends.store import secret_forms

        self.inner = inner
        self._forms = secret_forms(secret)

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        from actors.backends.store import scrub

        reply = await self.inner.complete(request)
        if isinstance(reply, Failure):
            clean = scrub(reply.message, self._forms)
            return reply if clean == reply.message else reply.model_copy(update={"message": clean})
        clean = scrub(reply.text, self._forms)
        return reply if clean == reply.text else reply.model_copy(update={"text": clean})

    def __repr__(self) -> str:
        return f"ScrubBackend({self.inner!r})"  # never the key
