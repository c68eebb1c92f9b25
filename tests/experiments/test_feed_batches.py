"""The driver's feeders: problems coalesce into runner calls, a queue waits at each gate, each is recorded once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from actors.runner import WIRE
from experiments.runtime.feed import Supervisor, drive
from experiments.runtime.progress import Progress
from experiments.runtime.results import ResultsWriter
from protocols.config import RunSpec
from protocols.messages import Failure, Problem, ProblemResult
from tests.actors.stream_fakes import StreamMethod


class _Log:
    def info(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeRunner:
    """Stands in for a runner actor handle's streaming ``run_stream``; the first
    attempt at problem ``flaky`` fails transiently (a 503)."""

    def __init__(self, flaky: str) -> None:
        self.flaky = flaky
        self.batches: list[list[str]] = []
        self.attempts: dict[str, int] = {}
        self.run_stream = StreamMethod(self._run_stream, WIRE)

    async def _run_stream(self, items: list[tuple[Problem, int]]) -> AsyncIterator[list[tuple[int, ProblemResult]]]:
        self.batches.append([p.id for p, _ in items])
        await asyncio.sleep(0)
        yield list(enumerate(self._results(items)))

    def _results(self, items: list[tuple[Problem, int]]) -> list[ProblemResult]:
        out = []
        for problem, index in items:
            self.attempts[problem.id] = self.attempts.get(problem.id, 0) + 1
            error = None
            if problem.id == self.flaky and self.attempts[problem.id] == 1:
                error = Failure(error="server", message="503", retryable=True)
            result = ProblemResult(
                run_id="r", problem_id=problem.id, index=index, benchmark="b", orchestrator="o",
                reference="1", final_text=None if error else "1", correct=error is None, error=error,
            )  # fmt: skip
            out.append(result)
        return out


def test_a_long_queue_goes_out_in_batches_and_every_problem_is_recorded_once(tmp_path: Path) -> None:
    problems = [
        Problem(id=f"p{i}", benchmark="b", question="q", reference="1", answer_format="free") for i in range(300)
    ]
    runners = [FakeRunner(flaky="p7"), FakeRunner(flaky="p7")]
    run = RunSpec(out_dir=tmp_path, runners=2, problems_in_flight=4, retry_backoff_s=0.0)
    writer = ResultsWriter(tmp_path)
    bar = Progress(len(problems), writer.tally, "t", enabled=False)
    asyncio.run(drive(iter(enumerate(problems)), len(problems), runners, run, writer, bar, _Log(), Supervisor(0)))
    tally = writer.finalize()
    writer.close()
    assert (tally.n, tally.correct, tally.still_open) == (300, 300, 0)
    sizes = [len(b) for r in runners for b in r.batches]
    assert max(sizes) > 1, "a long queue must go out several problems a call"
    assert sizes[-1] == 1 or min(sizes) == 1, "the tail goes out one problem a call"
    retried = [b for r in runners for b in r.batches if "p7" in b]
    assert len(retried) == 2 and [len(b) for b in retried][1] == 1, "a transient failure is re-attempted alone"
    seen = [pid for r in runners for b in r.batches for pid in b]
    assert sorted(seen) == sorted([p.id for p in problems] + ["p7"])


def test_the_feeders_read_the_problems_as_they_send_them_not_all_at_once(tmp_path: Path) -> None:
    read: list[int] = []
    ahead: list[int] = []  # problems read but not yet sent, at each runner call

    def stream() -> Any:
        for i in range(2000):
            read.append(i)
            yield i, Problem(id=f"p{i}", benchmark="b", question="q", reference="1", answer_format="free")

    runners = [FakeRunner(flaky="none")]
    original = runners[0]._run_stream

    async def watched(items: list[tuple[Problem, int]]) -> AsyncIterator[list[tuple[int, ProblemResult]]]:
        sent = sum(len(b) for b in runners[0].batches) + len(items)
        ahead.append(len(read) - sent)
        async for group in original(items):
            yield group

    runners[0].run_stream = StreamMethod(watched, WIRE)
    run = RunSpec(out_dir=tmp_path, runners=1, problems_in_flight=4, retry_backoff_s=0.0)
    writer = ResultsWriter(tmp_path)
    bar = Progress(2000, writer.tally, "t", enabled=False)
    asyncio.run(drive(stream(), 2000, runners, run, writer, bar, _Log(), Supervisor(0)))
    assert writer.finalize().n == 2000
    writer.close()
    assert max(ahead) == 0, "a problem is read only when a feeder sends it"


class HeldRunner(FakeRunner):
    """Answers each call's problems one at a time, a little later, and records how many
    problems it holds (sent and not yet answered) as each call arrives."""

    def __init__(self) -> None:
        super().__init__(flaky="none")
        self.held = 0
        self.peak = 0

    async def _run_stream(self, items: list[tuple[Problem, int]]) -> AsyncIterator[list[tuple[int, ProblemResult]]]:
        self.held += len(items)
        self.peak = max(self.peak, self.held)
        self.batches.append([p.id for p, _ in items])
        for position, result in enumerate(self._results(items)):
            await asyncio.sleep(0.0005)
            self.held -= 1
            yield [(position, result)]


def test_each_runner_holds_its_gate_full_and_as_many_again_waiting_never_more(tmp_path: Path) -> None:
    from experiments.runtime.feed import SPARE

    problems = [
        Problem(id=f"p{i}", benchmark="b", question="q", reference="1", answer_format="free") for i in range(400)
    ]
    runners = [HeldRunner(), HeldRunner()]
    run = RunSpec(out_dir=tmp_path, runners=2, problems_in_flight=4, retry_backoff_s=0.0)
    writer = ResultsWriter(tmp_path)
    bar = Progress(len(problems), writer.tally, "t", enabled=False)
    asyncio.run(drive(iter(enumerate(problems)), len(problems), runners, run, writer, bar, _Log(), Supervisor(0)))
    assert writer.finalize().n == 400
    writer.close()
    for runner in runners:
        # A freed slot is refilled from the runner's own queue, not after a round trip to the driver.
        assert runner.peak == 4 * (1 + SPARE), runner.peak
        assert runner.held == 0
    assert sorted(pid for r in runners for b in r.batches for pid in b) == sorted(p.id for p in problems)
