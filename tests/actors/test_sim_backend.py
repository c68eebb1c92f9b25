"""The sim backend: determinism, temperature, formats, usage/latency/cost, faults, cards."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from actors.backends.sim import SimBackend, load_cards
from datasets import grader_for
from datasets.gsm8k import load_gsm8k
from datasets.math500 import load_math500
from protocols.config import FaultSpec, ModelSpec, Price
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, Problem, RequestMeta

MODEL = "Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def math_problems(shared_datasets: Path) -> list[Problem]:
    return load_math500(shared_datasets / "math500" / "test.jsonl")[:120]


@pytest.fixture(scope="module")
def gsm_problems(shared_datasets: Path) -> list[Problem]:
    return load_gsm8k(shared_datasets / "gsm8k" / "test.jsonl", "test")[:120]


def request(problem: Problem, temperature: float = 0.0, sample_index: int = 0, **kw: object) -> CompletionRequest:
    return CompletionRequest(
        model=MODEL,
        messages=(ChatMessage(role="user", content=problem.question),),
        temperature=temperature,
        sample_index=sample_index,
        meta=RequestMeta(problem_id=problem.id, role="solver", problem=problem),
        **kw,  # type: ignore[arg-type]
    )


def letter_problem() -> Problem:
    return Problem(
        id="letter-1",
        benchmark="gpqa",
        question="[SYNTHETIC] Which is water? A) H2O B) CO2 C) NaCl D) O2",
        reference="A",
        answer_format="letter",
        choices=("H2O", "CO2", "NaCl", "O2"),
        domain="Chemistry",
    )


async def texts(backend: SimBackend, problems: list[Problem], **kw: object) -> list[str]:
    out = []
    for p in problems:
        reply = await backend.complete(request(p, **kw))  # type: ignore[arg-type]
        assert isinstance(reply, Completion)
        out.append(reply.text)
    return out


async def test_same_seed_same_completions_and_other_seed_differs_above_zero_temperature(
    math_problems: list[Problem],
) -> None:
    spec = ModelSpec(name=MODEL)
    a = await texts(SimBackend(spec, seed=0), math_problems, temperature=0.7)
    b = await texts(SimBackend(spec, seed=0), math_problems, temperature=0.7)
    c = await texts(SimBackend(spec, seed=1), math_problems, temperature=0.7)
    assert a == b
    assert a != c


async def test_greedy_completions_do_not_depend_on_the_seed(math_problems: list[Problem]) -> None:
    spec = ModelSpec(name=MODEL)
    runs = [await texts(SimBackend(spec, seed=s), math_problems) for s in (0, 1, 2)]
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("temperature", [0.0, 0.7])
async def test_sample_index_matters_only_above_zero_temperature(
    math_problems: list[Problem], temperature: float
) -> None:
    backend = SimBackend(ModelSpec(name=MODEL), seed=0)
    first = await texts(backend, math_problems, temperature=temperature, sample_index=0)
    second = await texts(backend, math_problems, temperature=temperature, sample_index=1)
    assert (first == second) is (temperature == 0.0)


async def test_completions_are_labelled_sim_with_usage_latency_and_cost(math_problems: list[Problem]) -> None:
    card = load_cards().card(MODEL)
    backend = SimBackend(ModelSpec(name=MODEL), seed=0)
    replies = [await backend.complete(request(p)) for p in math_problems]
    assert all(isinstance(r, Completion) and r.source == "sim" for r in replies)
    completions = [r for r in replies if isinstance(r, Completion)]
    mean_tokens = sum(r.usage.completion_tokens for r in completions) / len(completions)
    assert 0.6 * card.tokens["math500"].mean < mean_tokens < 1.6 * card.tokens["math500"].mean
    r = completions[0]
    assert r.usage.prompt_tokens == -(-len(math_problems[0].question) // 4)
    expected_cost = (r.usage.prompt_tokens * card.price.input + r.usage.completion_tokens * card.price.output) / 1e6
    assert r.cost_usd == pytest.approx(expected_cost, rel=1e-6)
    assert r.latency_s > card.ttft_s * 0.5
    assert r.latency_s == pytest.approx(card.ttft_s + r.usage.completion_tokens / card.decode_tps, rel=0.5)


async def test_spec_price_overrides_the_card(math_problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name=MODEL, price=Price(input=0.0, output=1000.0)), seed=0)
    reply = await backend.complete(request(math_problems[0]))
    assert isinstance(reply, Completion)
    assert reply.cost_usd == pytest.approx(reply.usage.completion_tokens * 1000.0 / 1e6)


@pytest.mark.parametrize("which", ["math", "gsm", "letter"])
async def test_outputs_parse_with_the_real_graders(
    which: str, math_problems: list[Problem], gsm_problems: list[Problem]
) -> None:
    problems = {"math": math_problems, "gsm": gsm_problems, "letter": [letter_problem()] * 1}[which]
    backend = SimBackend(ModelSpec(name="Qwen2.5-7B-Instruct"), seed=0)
    grader = grader_for(problems[0].answer_format)
    extracted = 0
    for i, p in enumerate(problems):
        reply = await backend.complete(request(p, temperature=0.7, sample_index=i))
        assert isinstance(reply, Completion)
        if await grader.extract(p, reply.text) is not None:
            extracted += 1
    # Only malformed replies (a few percent) lack an answer.
    assert extracted >= 0.9 * len(problems)


async def test_malformed_fault_rate_gives_abstentions(math_problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name=MODEL, faults=FaultSpec(malformed=1.0)), seed=0)
    grader = grader_for("boxed")
    for p in math_problems[:30]:
        reply = await backend.complete(request(p))
        assert isinstance(reply, Completion)
        assert await grader.extract(p, reply.text) is None


@pytest.mark.parametrize(
    ("faults", "kind"),
    [
        (FaultSpec(rate_limit=0.2), "rate_limit"),
        (FaultSpec(server_error=0.2), "server"),
        (FaultSpec(timeout=0.2), "timeout"),
    ],
)
async def test_faults_are_injected_at_about_the_configured_rate(
    faults: FaultSpec, kind: str, gsm_problems: list[Problem]
) -> None:
    backend = SimBackend(ModelSpec(name=MODEL, faults=faults), seed=0)
    replies = [
        await backend.complete(request(p, temperature=0.7, sample_index=i)) for i in range(5) for p in gsm_problems
    ]
    failures = [r for r in replies if isinstance(r, Failure)]
    assert all(f.error == kind and f.retryable for f in failures)
    assert 0.14 < len(failures) / len(replies) < 0.26


async def test_a_retried_request_gets_a_fresh_fault_draw(gsm_problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name=MODEL, faults=FaultSpec(rate_limit=0.5)), seed=0)
    outcomes = []
    for p in gsm_problems[:20]:
        tries = 0
        reply = await backend.complete(request(p))
        while isinstance(reply, Failure) and tries < 30:
            tries += 1
            reply = await backend.complete(request(p))
        outcomes.append(reply)
    assert all(isinstance(r, Completion) for r in outcomes)
    # The same run replays the same fault sequence.
    again = SimBackend(ModelSpec(name=MODEL, faults=FaultSpec(rate_limit=0.5)), seed=0)
    first = [isinstance(await again.complete(request(p)), Failure) for p in gsm_problems[:20]]
    fresh = SimBackend(ModelSpec(name=MODEL, faults=FaultSpec(rate_limit=0.5)), seed=0)
    assert first == [isinstance(await fresh.complete(request(p)), Failure) for p in gsm_problems[:20]]


async def test_max_tokens_truncates_without_an_answer(math_problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name="DeepSeek-R1-Distill-Qwen-7B"), seed=0)
    grader = grader_for("boxed")
    cut = 0
    for p in math_problems[:40]:
        reply = await backend.complete(request(p, max_tokens=1000))
        assert isinstance(reply, Completion)
        assert reply.usage.completion_tokens <= 1000
        if reply.finish_reason == "length":
            cut += 1
            assert await grader.extract(p, reply.text) is None
    assert cut >= 20  # R1 distills write ~4000 tokens on MATH


async def test_time_scale_really_sleeps(math_problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name=MODEL, time_scale=0.01), seed=0)
    start = time.perf_counter()
    reply = await backend.complete(request(math_problems[0]))
    elapsed = time.perf_counter() - start
    assert isinstance(reply, Completion)
    assert elapsed >= reply.latency_s * 0.01 * 0.9


def test_unknown_card_names_itself_and_the_known_ones() -> None:
    with pytest.raises(KeyError) as err:
        SimBackend(ModelSpec(name="x", card="GPT-17-Ultra"), seed=0)
    assert "GPT-17-Ultra" in str(err.value) and MODEL in str(err.value)


def test_size_prior_card_grows_with_size() -> None:
    cards = load_cards()
    small, big = cards.card("prior:3B"), cards.card("prior:70B")
    assert small.ability["math500"] < big.ability["math500"]
    assert small.ability["gsm8k"] < big.ability["gsm8k"]


async def test_request_without_problem_answers_in_the_asked_format() -> None:
    backend = SimBackend(ModelSpec(name=MODEL), seed=0)
    req = CompletionRequest(model=MODEL, prompt="What is 2+3? End with a line '#### <number>'.")
    reply = await backend.complete(req)
    assert isinstance(reply, Completion)
    assert reply == await backend.complete(req)
    assert reply.text.splitlines()[-1].startswith("#### ") or reply.finish_reason == "length"


async def test_complete_is_cheap(gsm_problems: list[Problem]) -> None:
    backend = SimBackend(ModelSpec(name=MODEL), seed=0)
    reqs = [request(p, temperature=0.7, sample_index=i) for i in range(5) for p in gsm_problems]
    for r in reqs[:120]:
        await backend.complete(r)  # warm the per-problem cache
    start = time.process_time()  # CPU time: other processes on the machine do not count
    await asyncio.gather(*(backend.complete(r) for r in reqs))
    per_call = (time.process_time() - start) / len(reqs)
    assert per_call < 1e-3
