"""Keeping problems in flight on runner actors: re-attempts, backoff, and telling dead actors apart.

``drive`` is the driver's inner loop (``experiments.runtime.driver`` owns the run's life
around it): feeders pull problems from one stream, one problem each at a time, keep each
runner's gate full with as many again waiting behind it (``SPARE``), re-attempt a
problem whose result carries a transient failure, and append each result to the run's
``ResultsWriter`` the moment it lands, so the driver holds no more than the problems in
flight.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

from actors.runner import stream_to
from experiments.runtime.errors import RunAborted
from experiments.runtime.progress import Progress
from experiments.runtime.results import ResultsWriter
from experiments.runtime.spawn import is_actor_death
from protocols.config import RunSpec
from protocols.messages import Failure, Problem, ProblemResult, transient_failure


class Supervisor:
    """The run's supervised actors by name; tells an actor that is dead for good from one restarting."""

    def __init__(self, restarts: int) -> None:
        self.restarts = restarts
        self.actors: dict[str, Any] = {}

    def add(self, name: str, handle: Any) -> None:
        self.actors[name] = handle

    async def dead(self, timeout_s: float = 30.0) -> str | None:
        """One line naming the first actor that died beyond its restart budget, or None.

        A restarting actor answers once it is back (or not within ``timeout_s``: then it is
        not known to be dead, and the run goes on).
        """
        for name, handle in self.actors.items():
            try:
                await asyncio.wait_for(handle.__ray_ready__.remote(), timeout_s)
            except TimeoutError:
                continue
            except Exception as exc:
                if is_actor_death(exc):
                    return self.why(name, exc)
                raise
        return None

    def why(self, name: str, exc: BaseException) -> str:
        cause = " ".join(str(exc).split())[:200]
        return (
            f"{name} died and its restart budget ({self.restarts}, run.actor_restarts) is spent: {cause}; "
            "finished results are kept, re-run the same command to resume"
        )


def backoff_s(run: RunSpec, attempt: int) -> float:
    """Wait before re-attempt ``attempt + 1`` of a problem: doubling, capped, with jitter."""
    return min(120.0, run.retry_backoff_s * 2**attempt) * random.uniform(0.75, 1.0)


SPARE = 1
"""Problems a runner holds waiting at its gate, per problem it may run at once.

A runner runs at most ``problems_in_flight`` problems; when one ends, a waiting one starts
in the runner at once, instead of after the result's round trip through the driver and
the next problem's way back (two Ray hops, each a burst's whole processing in a loop:
10-15 ms apiece at 256 in flight, docs/cluster.md). Problem clocks and deadlines start at
the gate, so waiting there costs a problem nothing."""


def _first_aborted(group: BaseExceptionGroup[RunAborted]) -> RunAborted:
    first = group.exceptions[0]
    return _first_aborted(first) if isinstance(first, BaseExceptionGroup) else first


async def drive(
    todo: Iterator[tuple[int, Problem]],
    count: int,
    runners: list[Any],
    run: RunSpec,
    writer: ResultsWriter,
    bar: Progress,
    log: Any,
    supervisor: Supervisor,
) -> None:
    """Keep ``run.problems_in_flight`` problems running on each runner; record results as they land.

    Each runner has ``problems_in_flight`` feeders and ``SPARE`` times as many spare ones,
    each with one problem in flight; a spare feeder stops once no more problems remain
    than the feeders proper, so the last problems spread over every runner instead of
    waiting at one's gate. The problems sent in one event-loop turn go as one streaming
    call (``actors.runner.stream_to``), so a burst of results is answered by one call.
    A result carrying a transient failure is attempted again (``run.problem_retries``
    times, with backoff) before it is recorded as open. ``todo`` is read only as feeders
    take from it (``count`` problems): the driver holds the problems in flight, not the
    dataset.
    """
    remaining = count
    feeders = len(runners) * run.problems_in_flight
    # A backend that stays down would have every problem wait through all its retries:
    # after this many problems in a row end open, stop and let a re-run pick them up.
    give_up_after = max(16, 2 * feeders)
    streak = 0

    # What the feeders of one runner send in one event-loop turn goes as one streaming call,
    # each result back as soon as it is done (``actors.coalesce``): one Ray call a problem
    # would cost each side about a millisecond of CPU, once the queue is short.
    calls = {id(runner): stream_to(runner) for runner in runners}

    async def attempt(runner_name: str, runner: Any, problem: Problem, index: int) -> ProblemResult:
        try:
            return await calls[id(runner)].submit((problem, index))
        except Exception as exc:
            if is_actor_death(exc):
                raise RunAborted(supervisor.why(runner_name, exc)) from None
            raise

    def record(result: ProblemResult, failure: Failure | None) -> None:
        nonlocal streak
        if writer.append(result):
            bar.update(result)
            log.info(
                "problem_done",
                problem_id=result.problem_id,
                correct=result.correct,
                error=result.error.error if result.error else None,
                open=failure is not None,
                wall_s=round(result.wall_s, 4),
            )
        else:  # computed again although it had a final result: wasted calls a resume must never make
            log.info("problem_duplicate", problem_id=result.problem_id)
        streak = streak + 1 if failure is not None else 0
        if streak >= give_up_after and failure is not None:
            raise RunAborted(
                f"{streak} problems in a row still failed after {run.problem_retries} re-attempts "
                f"(last: {failure.error}: {failure.message[:160]}); the backend looks down; "
                "finished results are kept, re-run the same command once it is back"
            )

    async def reattempt(runner_name: str, runner: Any, index: int, problem: Problem, result: ProblemResult) -> None:
        """Attempt a problem whose result carries a transient failure again, with backoff; record the last."""
        failure = transient_failure(result)
        for tries in range(run.problem_retries):
            if failure is None:
                break
            if failure.error == "actor":
                reason = await supervisor.dead()
                if reason is not None:
                    raise RunAborted(reason)
            wait = backoff_s(run, tries)
            log.info(
                "problem_retry",
                problem_id=problem.id,
                attempt=tries + 1,
                error=failure.error,
                message=failure.message[:200],
                wait_s=round(wait, 3),
            )
            await asyncio.sleep(wait)
            result = await attempt(runner_name, runner, problem, index)
            failure = transient_failure(result)
        record(result, failure)

    def take() -> tuple[int, Problem] | None:
        nonlocal remaining
        item = next(todo, None)
        if item is not None:
            remaining -= 1
        return item

    async def feed(runner_name: str, runner: Any, spare: bool) -> None:
        while remaining > 0:
            if spare and remaining <= feeders:  # the tail: no problem waits at a gate while a slot is free elsewhere
                return
            item = take()
            if item is None:  # fewer than counted (the same id twice in the dataset): nothing left
                return
            index, problem = item
            result = await attempt(runner_name, runner, problem, index)
            failure = transient_failure(result)
            if failure is None or run.problem_retries == 0:
                record(result, failure)
            else:
                await reattempt(runner_name, runner, index, problem, result)

    try:
        async with asyncio.TaskGroup() as group:
            for n, runner in enumerate(runners):
                for slot in range(run.problems_in_flight * (1 + SPARE)):
                    group.create_task(feed(f"runner actor {n}", runner, slot >= run.problems_in_flight))
    except* RunAborted as group:
        raise _first_aborted(group) from None
