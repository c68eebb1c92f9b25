"""Retry, rate-limit and in-flight wrappers on scripted in-process backends (no network)."""

from __future__ import annotations

import asyncio
import random

import pytest

from actors.backends.fake import FakeBackend
from actors.backends.wrappers import (
    InFlightBackend,
    RateLimitBackend,
    RetryBackend,
    TokenBucket,
    estimate_tokens,
)
from protocols.messages import Completion, CompletionRequest, Failure, Usage

REQUEST = CompletionRequest(model="m", prompt="x" * 400, max_tokens=100)


def ok(tokens: int = 10) -> Completion:
    return Completion(model="m", text="ok", usage=Usage(prompt_tokens=tokens, completion_tokens=0), source="fake")


def fail(error: str = "rate_limit", retryable: bool = True, retry_after: float | None = None) -> Failure:
    return Failure(error=error, message="scripted", retryable=retryable, retry_after_s=retry_after)  # type: ignore[arg-type]


def scripted(*replies: Completion | Failure) -> FakeBackend:
    """Replies from a script, in call order; one call too many raises."""
    return FakeBackend(list(replies))


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize(
    ("script", "max_retries", "kind", "attempts"),
    [
        ((ok(),), 3, Completion, 1),
        ((fail(), fail("server"), ok()), 3, Completion, 3),
        ((fail("timeout"), fail("connection"), fail("malformed"), fail()), 3, Failure, 4),
        ((fail(), fail(), ok()), 1, Failure, 2),
        ((fail("client", retryable=False), ok()), 3, Failure, 1),
        ((fail("replay_miss", retryable=False),), 3, Failure, 1),
    ],
)
async def test_retry_counts_attempts_and_stops_on_non_retryable(
    script: tuple[Completion | Failure, ...], max_retries: int, kind: type, attempts: int
) -> None:
    inner = scripted(*script)
    sleeps = Sleeps()
    reply = await RetryBackend(inner, max_retries, sleep=sleeps).complete(REQUEST)
    assert isinstance(reply, kind)
    assert reply.attempts == attempts == len(inner.requests)
    assert len(sleeps.waits) == attempts - 1


async def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    sleeps = Sleeps()
    retry = RetryBackend(
        scripted(*[fail("server")] * 7),
        6,
        base_delay_s=1.0,
        max_delay_s=8.0,
        rng=random.Random(1),
        sleep=sleeps,
    )
    await retry.complete(REQUEST)
    caps = [1, 2, 4, 8, 8, 8]
    assert len(sleeps.waits) == 6
    assert all(0 <= w <= c for w, c in zip(sleeps.waits, caps, strict=True))
    # Jitter: not simply the cap each time.
    assert sleeps.waits != [float(c) for c in caps]


@pytest.mark.parametrize(("retry_after", "expected_min"), [(5.0, 5.0), (500.0, 120.0), (0.0, 0.0)])
async def test_retry_after_is_honoured_and_capped(retry_after: float, expected_min: float) -> None:
    sleeps = Sleeps()
    retry = RetryBackend(
        scripted(fail(retry_after=retry_after), ok()), 2, base_delay_s=0.001, max_delay_s=0.001, sleep=sleeps
    )
    reply = await retry.complete(REQUEST)
    assert isinstance(reply, Completion) and reply.attempts == 2
    assert expected_min <= sleeps.waits[0] <= expected_min + 0.001


async def test_delay_scale_zero_retries_without_sleeping() -> None:
    sleeps = Sleeps()
    reply = await RetryBackend(scripted(fail(), fail(), ok()), 3, delay_scale=0.0, sleep=sleeps).complete(REQUEST)
    assert isinstance(reply, Completion) and reply.attempts == 3
    assert sleeps.waits == []


class FakeTime:
    """A clock and a sleep that advances it: the rate limiter runs in fake time, so no
    assertion depends on how loaded the machine is. ``sleep`` yields to the loop once, so
    concurrent waiters still interleave as they would on real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_token_bucket_paces_requests_at_the_rate() -> None:
    fake = FakeTime()
    bucket = TokenBucket(per_minute=600.0, clock=fake.clock, sleep=fake.sleep)  # 10 per second, burst 10
    stamps = []
    for _ in range(15):
        await bucket.acquire(1.0)
        stamps.append(fake.now - 1000.0)
    # 10 free from the burst, then one every 0.1 s.
    assert stamps[:10] == [0.0] * 10
    assert stamps[10:] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


async def test_token_bucket_refills_with_time_and_never_above_capacity() -> None:
    fake = FakeTime()
    bucket = TokenBucket(per_minute=600.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(10):
        await bucket.acquire(1.0)
    assert bucket.level == pytest.approx(0.0, abs=1e-6)
    fake.now += 0.35  # idle time refills at 10/s
    await bucket.acquire(1.0)
    assert fake.slept == [] and bucket.level == pytest.approx(2.5)
    fake.now += 3600.0  # a long idle period refills only up to the burst
    bucket.adjust(0.0)
    assert bucket.level == pytest.approx(bucket.capacity) == pytest.approx(10.0)


async def test_token_bucket_goes_into_debt_instead_of_deadlocking() -> None:
    fake = FakeTime()
    bucket = TokenBucket(per_minute=6000.0, clock=fake.clock, sleep=fake.sleep)  # 100/s, capacity 100
    await bucket.acquire(250.0)  # larger than capacity: allowed at once, then debt
    assert fake.slept == [] and bucket.level == pytest.approx(-150.0)
    await bucket.acquire(10.0)  # must wait to pay the debt back: 160 tokens at 100/s
    assert fake.now - 1000.0 == pytest.approx(1.6)
    assert bucket.level == pytest.approx(0.0, abs=1e-6)


async def test_rate_limit_corrects_reserved_tokens_from_usage() -> None:
    fake = FakeTime()
    limiter = RateLimitBackend(scripted(ok(tokens=30)), tokens_per_minute=60_000.0, clock=fake.clock, sleep=fake.sleep)
    assert limiter.tokens is not None
    before = limiter.tokens.level
    await limiter.complete(REQUEST)
    # Reserved estimate_tokens (200) then gave back what the reply did not use.
    assert estimate_tokens(REQUEST) == 200
    assert limiter.tokens.level == pytest.approx(before - 30)


async def test_requests_per_minute_limit_bounds_throughput() -> None:
    fake = FakeTime()
    inner = scripted(*[ok()] * 8)
    limiter = RateLimitBackend(inner, requests_per_minute=240.0, clock=fake.clock, sleep=fake.sleep)  # 4/s, burst 4
    await asyncio.gather(*(limiter.complete(REQUEST) for _ in range(8)))
    # 4 from the burst, 4 more at 4/s: the last call goes out 1 s (fake) after the first.
    assert len(inner.requests) == 8
    assert fake.now - 1000.0 == pytest.approx(1.0)


async def test_in_flight_bound_is_never_exceeded() -> None:
    now = peak = 0

    async def slow(request: CompletionRequest) -> Completion:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        await asyncio.sleep(0.01)
        now -= 1
        return ok()

    bound = InFlightBackend(FakeBackend(slow), 3)
    await asyncio.gather(*(bound.complete(REQUEST) for _ in range(20)))
    assert peak == 3


@pytest.mark.parametrize("bad", [0, -1])
def test_in_flight_rejects_a_bad_bound(bad: int) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        InFlightBackend(scripted(), bad)
