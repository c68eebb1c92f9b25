"""SLM-MUX end to end on scripted models: trace, confidences, tie-breaks, abstentions, the judge seam."""

from __future__ import annotations

import asyncio

import pytest

from actors.backends.fake import FakeBackend
from actors.handles import RemoteJudge
from orchestrators.base import Collaborators
from orchestrators.dispatch import run_orchestrator
from orchestrators.slm_mux import MUX_JUDGE, JudgeSample, MuxJudge, MuxVerdict, slm_mux
from protocols.config import SlmMuxConfig
from protocols.messages import CallRecord, CompletionRequest, Failure
from tests.orchestrators.slm_fakes import FAIL, PROBLEM, FakeGrader, answers_by_index


def _collab(scripts: dict, **extras) -> tuple[Collaborators, dict[str, FakeBackend]]:
    models = {name: FakeBackend(script, model=name) for name, script in scripts.items()}
    return Collaborators(models=models, grader=FakeGrader(), run_id="r1", seed=7, extras=extras), models


async def test_most_confident_model_answers_and_trace_holds_every_call() -> None:
    collab, models = _collab(
        {
            "Gemma": answers_by_index("3", "4", "5"),  # confidence 1/3
            "Llama": answers_by_index("\\frac{1}{2}", "0.5", "7"),  # 2/3: equivalent forms agree
        }
    )
    config = SlmMuxConfig(models=("Gemma", "Llama"), k=3, temperature=0.3, validation_accuracy={"Gemma": 0.9})
    out = await slm_mux(PROBLEM, config, collab)
    assert out.details["chosen_model"] == "Llama"
    assert out.answer == "\\frac{1}{2}"
    assert out.final_text == "Reasoning... \\boxed{\\frac{1}{2}}"
    assert out.details["per_model"]["Llama"]["confidence"] == 2 / 3
    assert out.details["per_model"]["Gemma"]["confidence"] == 1 / 3
    assert out.details["tie_break"] == "none"
    calls = [e for e in out.trace if isinstance(e, CallRecord)]
    assert [(c.model, c.sample_index) for c in calls] == [(m, i) for m in ("Gemma", "Llama") for i in range(3)]
    for model in models.values():
        for req in model.requests:
            assert req.meta.problem == PROBLEM and req.meta.role == "solver"
            assert req.meta.run_id == "r1" and req.seed == 7 and req.temperature == 0.3
        assert sorted(r.sample_index for r in model.requests) == [0, 1, 2]


async def test_confidence_tie_goes_to_validation_accuracy() -> None:
    collab, _ = _collab({"Gemma": answers_by_index("3", "3", "1"), "Llama": answers_by_index("2", "9", "2")})
    config = SlmMuxConfig(models=("Llama", "Gemma"), k=3, validation_accuracy={"Gemma": 0.62, "Llama": 0.5})
    out = await slm_mux(PROBLEM, config, collab)
    assert (out.details["chosen_model"], out.answer, out.details["tie_break"]) == ("Gemma", "3", "validation_accuracy")
    assert out.details["tied_models"] == ["Gemma", "Llama"]


async def test_failed_calls_are_abstentions_that_count_in_k_and_stay_in_the_trace() -> None:
    def flaky(request: CompletionRequest) -> str | Failure:
        return FAIL if request.sample_index < 2 else "\\boxed{5}"

    collab, _ = _collab({"A": flaky, "B": answers_by_index("6", "6", None)})
    out = await slm_mux(PROBLEM, SlmMuxConfig(models=("A", "B"), k=3), collab)
    assert out.details["per_model"]["A"]["confidence"] == 1 / 3  # 1 answer out of k=3, not 1/1
    assert out.details["per_model"]["B"]["confidence"] == 2 / 3
    assert out.answer == "6"
    failures = [e for e in out.trace if isinstance(e, CallRecord) and isinstance(e.reply, Failure)]
    assert len(failures) == 2


async def test_all_invalid_is_an_error_outcome_never_an_answer() -> None:
    collab, _ = _collab({"A": answers_by_index(None, None), "B": lambda r: FAIL})
    out = await slm_mux(PROBLEM, SlmMuxConfig(models=("A", "B"), k=2), collab)
    assert out.final_text is None and out.answer is None
    assert out.error is not None and out.error.error == "malformed"
    assert out.details["tie_break"] == "all_invalid"
    assert len(out.trace) == 4


async def test_all_calls_failed_reports_the_failure_kind() -> None:
    collab, _ = _collab({"A": lambda r: FAIL})
    out = await slm_mux(PROBLEM, SlmMuxConfig(models=("A",), k=2), collab)
    assert out.error is not None and out.error.error == "server"


class SpyJudge(MuxJudge):
    def __init__(self) -> None:
        super().__init__(FakeGrader())
        self.seen: list[list[JudgeSample]] = []

    async def select(self, problem, samples, validation_accuracy=None) -> MuxVerdict:
        self.seen.append(list(samples))
        return await super().select(problem, samples, validation_accuracy)


async def test_judge_from_extras_is_used_instead_of_an_in_process_one() -> None:
    judge = SpyJudge()
    collab, _ = _collab({"A": answers_by_index("1", "1")}, **{MUX_JUDGE: judge})
    out = await run_orchestrator(SlmMuxConfig(models=("A",), k=2), PROBLEM, collab)
    assert out.answer == "1"
    assert [s.text for s in judge.seen[0]] == ["Reasoning... \\boxed{1}"] * 2
    assert collab.grader.extract_calls == 0  # type: ignore[attr-defined]  # the judge graded, not the runner


class RemoteLike:
    """Mimics a Ray actor handle: ``select.remote(...)`` returns an awaitable."""

    class _Method:
        def __init__(self, judge: MuxJudge) -> None:
            self.judge = judge
            self.calls = 0

        def __call__(self, *a):  # a Ray handle refuses direct calls
            raise TypeError("Actor methods cannot be called directly")

        def remote(self, *args):
            self.calls += 1
            return asyncio.ensure_future(self.judge.select(*args))

    def __init__(self) -> None:
        self.select = self._Method(MuxJudge(FakeGrader()))


async def test_judge_behind_its_actor_facade_is_awaited() -> None:
    handle = RemoteLike()
    collab, _ = _collab({"A": answers_by_index("2", "2", "3")}, **{MUX_JUDGE: RemoteJudge(handle)})
    out = await slm_mux(PROBLEM, SlmMuxConfig(models=("A",), k=3), collab)
    assert out.answer == "2" and handle.select.calls == 1


async def test_judge_maps_first_draw_to_the_real_sample_index_and_text() -> None:
    judge = MuxJudge(FakeGrader())
    samples = [
        JudgeSample(model="A", sample_index=2, text="\\boxed{0.5}"),
        JudgeSample(model="A", sample_index=0, text=None),
        JudgeSample(model="A", sample_index=1, text="\\boxed{1/2}"),
    ]
    verdict = await judge.select(PROBLEM, samples, {})
    assert verdict.sample_index == 1  # the earliest draw of the winning answer, not list position
    assert verdict.answer == "1/2"
    assert verdict.confidence == 2 / 3
    assert verdict.labels == (0, None, 0)


async def test_judge_builds_graders_per_format_from_a_factory() -> None:
    made: list[str] = []

    def factory(fmt: str) -> FakeGrader:
        made.append(fmt)
        return FakeGrader()

    judge = MuxJudge(grader_for=factory)
    samples = [JudgeSample(model="A", sample_index=0, text="\\boxed{2}")]
    await judge.select(PROBLEM, samples, {})
    await judge.select(PROBLEM, samples, {})
    assert made == ["boxed"]
    with pytest.raises(TypeError, match="grader_for"):
        await MuxJudge().select(PROBLEM, samples, {})


class SlowFirst(FakeBackend):
    """Replies to early samples last, so arrival order is the reverse of request order."""

    async def complete(self, request: CompletionRequest):
        await asyncio.sleep(0.01 * (3 - request.sample_index))
        return await super().complete(request)


async def test_trace_order_is_request_order_not_arrival_order() -> None:
    models = {
        "A": SlowFirst(answers_by_index("1", "2", "2"), model="A"),
        "B": SlowFirst(answers_by_index("3", "3", "4"), model="B"),
    }
    collab = Collaborators(models=models, grader=FakeGrader())
    out = await slm_mux(PROBLEM, SlmMuxConfig(models=("A", "B"), k=3), collab)
    calls = [e for e in out.trace if isinstance(e, CallRecord)]
    assert [(c.model, c.sample_index) for c in calls] == [("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 1), ("B", 2)]
    assert out.details["answers"] == ["1", "2", "2", "3", "3", "4"]
