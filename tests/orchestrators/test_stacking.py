"""The stacking orchestrator: the root agent's answer, its failures, and per-layer totals."""

from __future__ import annotations

from actors.backends.fake import FakeBackend
from orchestrators.base import Collaborators
from orchestrators.stacking import per_layer, reused_count, stacking
from protocols.config import StackingConfig
from protocols.messages import (
    CallRecord,
    Completion,
    Failure,
    NoteRecord,
    Problem,
    ToolCallRecord,
    TraceEvent,
    Usage,
    totals_of,
)
from protocols.tools import ToolAnswer
from tests.orchestrators.test_react import FINAL, BoxGrader, FakeTool, scripted

PROBLEM = Problem(id="p1", benchmark="math500", question="What is 1+1?", reference="2", answer_format="boxed")
CONFIG = StackingConfig(structure="Agent[A]@orch")


class LoopRoot:
    """A root agent in-process: the real ReAct loop over a scripted model and fake tools."""

    def __init__(self, model: FakeBackend, config: StackingConfig = CONFIG) -> None:
        self.model, self.config = model, config

    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        from orchestrators.react import react_loop

        return await react_loop(
            problem,
            query,
            name="root",
            layer=1,
            model_name="orch",
            model=self.model,
            tools={"A": FakeTool("A")},
            grader=BoxGrader(),
            run_id=run_id,
            seed=0,
            config=self.config,
        )


class Exploding:
    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        raise RuntimeError("root actor died")


def collab(root: object) -> Collaborators:
    return Collaborators(models={}, grader=BoxGrader(), run_id="r", tools={"root": root} if root else {})


async def test_the_root_answers_the_problem_question() -> None:
    model = scripted(lambda r: FINAL if r.meta.tools_called else 'Action: A\nAction Input: {"query": "q"}')
    outcome = await stacking(PROBLEM, CONFIG, collab(LoopRoot(model)))
    assert outcome.error is None and outcome.final_text == "\\boxed{2}" and outcome.answer == "2"
    assert model.requests[0].messages[1].content == f"Question: {PROBLEM.question}"
    assert outcome.details["steps"] == 2 and outcome.details["structure"] == CONFIG.structure


async def test_steps_exhausted_is_an_error_never_an_answer() -> None:
    outcome = await stacking(PROBLEM, CONFIG, collab(LoopRoot(scripted(lambda r: FINAL))))
    assert outcome.error is not None and outcome.error.error == "steps_exhausted"
    assert outcome.final_text is None and outcome.answer is None
    assert totals_of(outcome.trace).calls == 15  # the spent tokens are still reported


async def test_missing_or_crashing_root_is_a_typed_failure() -> None:
    missing = await stacking(PROBLEM, CONFIG, collab(None))
    assert missing.error is not None and "collab.tools['root']" in missing.error.message
    crashed = await stacking(PROBLEM, CONFIG, collab(Exploding()))
    assert crashed.error is not None and "root actor died" in crashed.error.message
    assert crashed.final_text is None


def call(tokens: int) -> CallRecord:
    reply = Completion(model="m", text="t", usage=Usage(prompt_tokens=tokens), cost_usd=tokens / 100, source="sim")
    return CallRecord(model="m", role="agent", reply=reply)


def agent_trace(layer: int, *events: TraceEvent) -> tuple[TraceEvent, ...]:
    return (NoteRecord(label="agent", data={"layer": layer}), *events)


def test_per_layer_splits_a_three_level_trace_and_sums_to_the_total() -> None:
    raw = ToolCallRecord(tool="m", query="q", answer="2", trace=(call(1),))
    inner = ToolCallRecord(tool="x1", query="q", answer="2", trace=agent_trace(1, call(10), raw))
    trace = agent_trace(2, call(100), raw, inner, NoteRecord(label="reused", data={}), call(100))
    layers = per_layer(trace)
    assert {k: v["prompt_tokens"] for k, v in layers.items()} == {"layer_0": 2, "layer_1": 10, "layer_2": 200}
    assert sum(v["prompt_tokens"] for v in layers.values()) == totals_of(trace).usage.total_tokens
    assert sum(v["calls"] for v in layers.values()) == totals_of(trace).calls == 5
    assert reused_count(trace) == 1


def test_a_failed_call_is_counted_in_its_layer() -> None:
    failed = CallRecord(model="m", role="agent", reply=Failure(error="timeout", message="slow"))
    layers = per_layer(agent_trace(3, failed))
    assert layers == {
        "layer_3": {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost_usd": 0.0,
            "calls": 1,
            "failed_calls": 1,
        }
    }
