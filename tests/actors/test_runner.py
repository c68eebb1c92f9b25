"""The runner: bounded concurrency, deadlines and crashes become typed failures."""

from __future__ import annotations

import asyncio

from actors.runner import WIRE, Runner
from protocols.messages import Failure, Problem, ProblemResult

PROBLEM = Problem(id="p", benchmark="synthetic", question="1+1?", reference="2", answer_format="boxed")


class Job:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.active = 0
        self.peak = 0

    async def __call__(self, problem: Problem, index: int) -> ProblemResult:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.behaviour == "hang":
                await asyncio.sleep(60)
            if self.behaviour == "crash":
                raise RuntimeError("boom")
            await asyncio.sleep(0.01)
            return ProblemResult(
                run_id="r", problem_id=problem.id, index=index, benchmark="b", orchestrator="o", reference="2"
            )
        finally:
            self.active -= 1

    def failed(self, problem: Problem, index: int, failure: Failure, wall_s: float) -> ProblemResult:
        return ProblemResult(
            run_id="r",
            problem_id=problem.id,
            index=index,
            benchmark="b",
            orchestrator="o",
            reference="2",
            error=failure,
        )


async def test_concurrency_is_bounded() -> None:
    job = Job("ok")
    runner = Runner(job, max_in_flight=3)
    results = await asyncio.gather(*(runner.run(PROBLEM, i) for i in range(12)))
    assert len(results) == 12
    assert job.peak == 3
    assert await runner.done() == 12


async def test_deadline_becomes_timeout_failure() -> None:
    result = await Runner(Job("hang"), timeout_s=0.05).run(PROBLEM, 0)
    assert result.error is not None and result.error.error == "timeout"
    assert not result.correct


async def test_crash_becomes_internal_failure_naming_problem() -> None:
    result = await Runner(Job("crash")).run(PROBLEM, 0)
    assert result.error is not None and result.error.error == "internal"
    assert "boom" in result.error.message and "'p'" in result.error.message


async def _stream(runner: Runner, items: list[tuple[Problem, int]]) -> list[ProblemResult | None]:
    """``runner.run_stream`` as the driver reads it: each result placed at its item's position."""
    out: list[ProblemResult | None] = [None] * len(items)
    async for packed in runner.run_stream(WIRE.dump_items(items)):
        for position, result in WIRE.load_group(packed):
            out[position] = result
    return out


async def test_a_batch_keeps_its_order_and_the_gate() -> None:
    job = Job("ok")
    runner = Runner(job, max_in_flight=2)
    items = [(PROBLEM.model_copy(update={"id": f"p{i}"}), i) for i in range(7)]
    results = await _stream(runner, items)
    assert [r.index if r else None for r in results] == list(range(7))
    assert [r.problem_id if r else None for r in results] == [f"p{i}" for i in range(7)]
    assert job.peak == 2, "a batch must not run more problems at once than the runner's in-flight limit"


async def test_one_crashing_problem_of_a_batch_loses_no_other() -> None:
    class Mixed(Job):
        async def __call__(self, problem: Problem, index: int) -> ProblemResult:
            if index == 1:
                raise RuntimeError("boom")
            return await super().__call__(problem, index)

    results = await _stream(Runner(Mixed("ok")), [(PROBLEM, i) for i in range(3)])
    assert all(results), results
    assert [r.error.error if r and r.error else None for r in results] == [None, "internal", None]
