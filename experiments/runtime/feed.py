"""Keeping problems in flight on runner actors: re-attempts, backoff, and telling dead actors apart.

``drive`` is the driver's inner loop (``experiments.runtime.driver`` owns the run's life
around it): ``run.problems_in_flight`` feeders per runner pull problems from one stream
(several a call while many remain: ``batch_size``), re-attempt a problem whose
result carries a transient failure, and append each result to the run's
``ResultsWriter`` the moment it lands, so the driver holds no more than the problems in
flight.
"""

from __future__ import annotations

import asyncio
import itertools
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


MAX_BATCH = 16
"""Most problems in one driver -> runner call (``batch_size``)."""


def batch_size(queued: int, feeders: int) -> int:
    """How many queued problems a feeder sends in one runner call.

    A Ray call costs each side about a millisecond of CPU, as much as a simulated
    completion, so a long queue goes out in batches: each feeder takes a share of what is
    queued (half an even split, at most ``MAX_BATCH``), which falls to one problem a call
    as the queue drains, so the last problems still spread over every runner.
    A runner runs at most ``problems_in_flight`` problems at once whatever it was sent;
    the rest of a batch waits in it (problem clocks and deadlines start at the gate).
    """
    return max(1, min(MAX_BATCH, queued // (2 * max(1, feeders))))


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

    Each of a runner's ``problems_in_flight`` feeders has one call in flight, of one
    problem or, while the queue is long, a batch (``batch_size``) that waits at the
    runner's gate. A result carrying a transient failure is attempted again, alone
    (``run.problem_retries`` times, with backoff), before it is recorded as open.
    ``todo`` is read only as feeders take from it (``count`` problems): the driver holds
    the problems in flight, not the dataset.
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

    async def attempt(runner_name: str, runner: Any, batch: list[tuple[Problem, int]]) -> list[ProblemResult]:
        try:
            results = list(await asyncio.gather(*(calls[id(runner)].submit(item) for item in batch)))
        except Exception as exc:
            if is_actor_death(exc):
                raise RunAborted(supervisor.why(runner_name, exc)) from None
            raise
        return results

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
            result = (await attempt(runner_name, runner, [(problem, index)]))[0]
            failure = transient_failure(result)
        record(result, failure)

    def take() -> list[tuple[int, Problem]]:
        nonlocal remaining
        batch = list(itertools.islice(todo, batch_size(remaining, feeders)))
        remaining -= len(batch)
        return batch

    async def feed(runner_name: str, runner: Any) -> None:
        while remaining > 0:
            batch = take()
            if not batch:  # fewer than counted (the same id twice in the dataset): nothing left
                return
            results = await attempt(runner_name, runner, [(problem, index) for index, problem in batch])
            again = []
            for (index, problem), result in zip(batch, results, strict=True):
                failure = transient_failure(result)
                if failure is None or run.problem_retries == 0:
                    record(result, failure)
                else:
                    again.append((index, problem, result))
            if again:  # concurrently, as they would have been one problem a call
                async with asyncio.TaskGroup() as retries:
                    for index, problem, result in again:
                        retries.create_task(reattempt(runner_name, runner, index, problem, result))

    try:
        async with asyncio.TaskGroup() as group:
            for n, runner in enumerate(runners):
                for _ in range(run.problems_in_flight):
                    group.create_task(feed(f"runner actor {n}", runner))
    except* RunAborted as group:
        raise _first_aborted(group) from None
