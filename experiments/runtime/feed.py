"""Keeping problems in flight on runner actors: re-attempts, backoff, and telling dead actors apart.

``drive`` is the driver's inner loop (``experiments.runtime.driver`` owns the run's life
around it): ``run.problems_in_flight`` feeders per runner pull problems from one queue,
re-attempt a problem whose result carries a transient failure, and append each result
to the run's ``ResultsWriter`` the moment it lands, so the driver holds no more than
the problems in flight.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from experiments.runtime.errors import RunAborted
from experiments.runtime.progress import Progress
from experiments.runtime.results import ResultsWriter
from experiments.runtime.spawn import is_actor_death
from protocols.config import RunSpec
from protocols.messages import Problem, ProblemResult, transient_failure


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


async def drive(
    todo: list[tuple[int, Problem]],
    runners: list[Any],
    run: RunSpec,
    writer: ResultsWriter,
    bar: Progress,
    log: Any,
    supervisor: Supervisor,
) -> None:
    """Keep ``run.problems_in_flight`` problems in flight on each runner; record results as they land.

    A result carrying a transient failure is attempted again (``run.problem_retries``
    times, with backoff) before it is recorded as open.
    """
    queue: asyncio.Queue[tuple[int, Problem]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    # A backend that stays down would have every problem wait through all its retries:
    # after this many problems in a row end open, stop and let a re-run pick them up.
    give_up_after = max(16, 2 * len(runners) * run.problems_in_flight)
    streak = 0

    async def attempt(runner_name: str, runner: Any, problem: Problem, index: int) -> ProblemResult:
        try:
            result: ProblemResult = await runner.run.remote(problem, index)
        except Exception as exc:
            if is_actor_death(exc):
                raise RunAborted(supervisor.why(runner_name, exc)) from None
            raise
        return result

    async def feed(runner_name: str, runner: Any) -> None:
        nonlocal streak
        while not queue.empty():
            index, problem = queue.get_nowait()
            for tries in range(run.problem_retries + 1):
                result = await attempt(runner_name, runner, problem, index)
                failure = transient_failure(result)
                if failure is None or tries == run.problem_retries:
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

    try:
        async with asyncio.TaskGroup() as group:
            for n, runner in enumerate(runners):
                for _ in range(run.problems_in_flight):
                    group.create_task(feed(f"runner actor {n}", runner))
    except* RunAborted as group:
        raise group.exceptions[0] from None
