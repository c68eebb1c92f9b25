"""The fake backend: built-in replies per role and format, scripts, injected errors, its label."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from actors.backends.factory import build_backend
from actors.backends.fake import FakeBackend, answer_line, wrong_answer
from datasets.grading.graders import grader_for
from protocols.config import FakeSpec, ModelSpec, StoreSpec
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, Problem, RequestMeta

PROBLEMS = [
    Problem(id="m", benchmark="math500", question="1/2?", reference="\\frac{1}{2}", answer_format="boxed"),
    Problem(id="g", benchmark="gsm8k", question="3+4?", reference="7", answer_format="gsm8k"),
    Problem(id="l", benchmark="gpqa", question="Pick.", reference="C", answer_format="letter", choices=("a",) * 4),
]


def request(problem: Problem | None = None, role: str = "solver", **meta: object) -> CompletionRequest:
    return CompletionRequest(
        model="f",
        messages=(ChatMessage(role="user", content=problem.question if problem else "hello"),),
        meta=RequestMeta(problem=problem, problem_id=problem.id if problem else None, role=role, **meta),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.answer_format)
async def test_gold_is_graded_right_and_wrong_is_graded_wrong_by_the_real_graders(problem: Problem) -> None:
    grader = grader_for(problem.answer_format)
    for reply, correct in (("gold", True), ("wrong", False)):
        out = await FakeBackend(FakeSpec(reply=reply)).complete(request(problem))  # type: ignore[arg-type]
        assert isinstance(out, Completion) and out.source == "fake"
        grade = await grader.grade(problem, out.text)
        assert grade.correct is correct, (reply, out.text, grade)
        assert grade.extracted is not None


async def test_gold_verifier_accepts_exactly_the_reference_and_wrong_inverts_it() -> None:
    p = PROBLEMS[1]
    gold, wrong = FakeBackend(FakeSpec(reply="gold")), FakeBackend(FakeSpec(reply="wrong"))
    verdicts = []
    for backend in (gold, wrong):
        for target in ("7", "8"):
            out = await backend.complete(request(p, "verifier", target=target))
            assert isinstance(out, Completion)
            verdicts.append(out.text.splitlines()[-1])
    assert verdicts == ["Verdict: CORRECT", "Verdict: INCORRECT", "Verdict: INCORRECT", "Verdict: CORRECT"]


async def test_gold_agent_calls_each_tool_not_yet_called_then_answers() -> None:
    from orchestrators.react import ReactAction, ReactFinal, parse_react

    backend = FakeBackend(FakeSpec(reply="gold"))
    p = PROBLEMS[1]
    first = await backend.complete(request(p, "agent", tools=("A", "B"), tools_called=("A",)))
    last = await backend.complete(request(p, "agent", tools=("A", "B"), tools_called=("A", "B")))
    assert isinstance(first, Completion) and isinstance(last, Completion)
    assert parse_react(first.text) == ReactAction(tool="B", query=p.question)
    assert parse_react(last.text) == ReactFinal(text=answer_line("gsm8k", "7"))


async def test_gold_alpha_umi_role_writes_the_recorded_turn_and_no_problem_is_a_config_failure() -> None:
    backend = FakeBackend(FakeSpec(reply="gold"))
    turn = await backend.complete(request(None, "caller", extra={"gold_next": "Action: f\nAction Input: {}"}))
    assert isinstance(turn, Completion) and turn.text == "Action: f\nAction Input: {}"
    lost = await backend.complete(request(None, "solver"))
    assert isinstance(lost, Failure) and lost.error == "config" and "meta" in lost.message


async def test_echo_fixed_and_script_by_sample_index() -> None:
    echo = await FakeBackend(FakeSpec(reply="echo")).complete(request())
    fixed = await FakeBackend(FakeSpec(reply="fixed", text="hi")).complete(request())
    assert isinstance(echo, Completion) and echo.text == "hello"
    assert isinstance(fixed, Completion) and fixed.text == "hi"
    script = FakeBackend(FakeSpec(reply="script", script=("a", "b")))
    texts = []
    for i in (2, 1, 0, 3):
        out = await script.complete(request().model_copy(update={"sample_index": i}))
        assert isinstance(out, Completion)
        texts.append(out.text)
    assert texts == ["a", "b", "a", "b"]  # by sample index, whatever the call order


async def test_a_python_function_or_a_call_order_script_drives_it_and_requests_are_recorded() -> None:
    async def shout(req: CompletionRequest) -> str:
        return req.messages[-1].content.upper()

    backend = FakeBackend(shout, model="loud")
    out = await backend.complete(request())
    assert isinstance(out, Completion) and (out.text, out.model, out.source) == ("HELLO", "loud", "fake")
    assert backend.requests == [request()]
    listed = FakeBackend(["one", Failure(error="server", message="503", retryable=True)])
    assert [(await listed.complete(request())).kind for _ in range(2)] == ["completion", "failure"]
    with pytest.raises(IndexError, match="2 replies"):
        await listed.complete(request())  # a test that calls more than it scripted is wrong


async def test_injected_errors_are_seeded_per_attempt_and_typed() -> None:
    rates = {"server": 0.3, "client": 0.2}
    outs = []
    for _ in range(2):
        backend = FakeBackend(FakeSpec(errors=rates), seed=3)  # type: ignore[arg-type]
        outs.append(
            [await backend.complete(request(PROBLEMS[1]).model_copy(update={"sample_index": i})) for i in range(400)]
        )
    kinds = [o.error if isinstance(o, Failure) else "ok" for o in outs[0]]
    assert kinds == [o.error if isinstance(o, Failure) else "ok" for o in outs[1]]  # same seed, same draws
    share = {k: kinds.count(k) / len(kinds) for k in ("server", "client", "ok")}
    assert share["server"] == pytest.approx(0.3, abs=0.07) and share["client"] == pytest.approx(0.2, abs=0.07)
    server = next(o for o in outs[0] if isinstance(o, Failure) and o.error == "server")
    client = next(o for o in outs[0] if isinstance(o, Failure) and o.error == "client")
    assert server.transient and not client.transient
    # A retry is a fresh draw: under the real retry wrapper every transient failure is ridden out.
    spec = ModelSpec(name="f", backend="fake", fake=FakeSpec(errors={"server": 0.5}), max_retries=20)
    chain = build_backend(spec, seed=0, store=StoreSpec())
    replies = [await chain.complete(request(PROBLEMS[1]).model_copy(update={"sample_index": i})) for i in range(50)]
    assert all(isinstance(r, Completion) for r in replies) and max(r.attempts for r in replies) > 1


def test_config_errors_name_the_bad_value() -> None:
    with pytest.raises(ValidationError, match="needs a non-empty script"):
        FakeSpec(reply="script")
    with pytest.raises(ValidationError, match="summing to at most 1"):
        FakeSpec(errors={"server": 0.7, "timeout": 0.6})
    with pytest.raises(ValidationError, match="'fake' settings need backend 'fake', not 'sim'"):
        ModelSpec(name="m", fake=FakeSpec())


def test_wrong_answer_is_never_the_reference() -> None:
    for p in PROBLEMS:
        assert wrong_answer(p) != p.reference
