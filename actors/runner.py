"""The runner actor: evaluates problems of a shard, many in flight, each under a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from actors.coalesce import JsonWire, StreamBatcher, packed_groups
from actors.model import actor_failure
from protocols.messages import Failure, Problem, ProblemResult


class ProblemJob(Protocol):
    """What a runner runs on each problem; built by ``experiments`` (it knows the orchestrator)."""

    async def __call__(self, problem: Problem, index: int) -> ProblemResult: ...

    def failed(self, problem: Problem, index: int, failure: Failure, wall_s: float) -> ProblemResult: ...


WIRE = JsonWire(tuple[Problem, int], ProblemResult)
"""How ``Runner.run_stream``'s problems and results travel (``actors.coalesce``)."""


class Runner:
    """Runs a ``ProblemJob`` on problems sent by the driver, at most ``max_in_flight`` at once.

    An exception or a blown deadline becomes a result carrying a typed ``Failure``,
    so one bad problem never loses the others or kills the actor.
    """

    def __init__(self, job: ProblemJob, max_in_flight: int = 32, timeout_s: float = 1800.0) -> None:
        self.job = job
        self.timeout_s = timeout_s
        self._gate = asyncio.Semaphore(max_in_flight)
        self._done = 0

    async def run(self, problem: Problem, index: int) -> ProblemResult:
        """Evaluate one problem; always returns a result."""
        async with self._gate:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_s):
                    result = await self.job(problem, index)
            except TimeoutError:
                failure = Failure(error="timeout", message=f"problem {problem.id!r} exceeded {self.timeout_s}s")
                result = self.job.failed(problem, index, failure, time.perf_counter() - started)
            except Exception as exc:
                # A collaborator actor (e.g. the MUX judge) that died is transient, not a bug.
                failure = actor_failure(exc, "a collaborator actor") or Failure(
                    error="internal", message=f"{type(exc).__name__} on problem {problem.id!r}: {exc}"
                )
                result = self.job.failed(problem, index, failure, time.perf_counter() - started)
        self._done += 1
        return result

    async def run_stream(self, payload: bytes) -> AsyncIterator[bytes]:
        """Several problems in one streaming actor call: ``(position, result)`` groups as they finish.

        One Ray call costs each side about a millisecond of CPU (submission, scheduling,
        serialising), as much as a simulated completion; a stream of b problems costs about
        one, and no result waits for the slowest. The problems still run at most
        ``max_in_flight`` at once (the gate), each under its own deadline and clock.
        ``payload`` is the packed list of ``(problem, index)``, each yield a packed group
        (``actors.coalesce``).
        """
        items: list[tuple[Problem, int]] = WIRE.load_items(payload)
        async for packed in packed_groups([self.run(problem, index) for problem, index in items], WIRE):
            yield packed

    async def done(self) -> int:
        """How many problems this runner finished."""
        return self._done


class RemoteRunner:
    """A runner actor as a plain object: ``await run(problem, index)`` (awaits the ref, never ``ray.get``)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def run(self, problem: Problem, index: int) -> ProblemResult:
        return await self.handle.run.remote(problem, index)  # type: ignore[no-any-return]


def stream_to(handle: Any) -> StreamBatcher[tuple[Problem, int], ProblemResult]:
    """The driver's calls to a runner actor: ``await stream_to(h).submit((problem, index))``.

    What is submitted in one event-loop turn goes as one ``run_stream`` call, each result
    back as soon as it is done; every error (a dead runner included) is raised in each caller.
    """
    return StreamBatcher(
        lambda payload: handle.run_stream.options(num_returns="streaming").remote(payload), _raise, WIRE
    )


def _raise(exc: BaseException) -> None:
    return None  # no reply stands in for an error: the caller tells a dead runner from a bug
