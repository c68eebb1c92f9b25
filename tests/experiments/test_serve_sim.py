"""serve-sim speaks the OpenAI wire format: the official client works, bad requests get a 4xx JSON error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from experiments.serve_sim import ProblemLookup, ServerSettings, SimServer, parse_faults, start
from protocols.config import FaultSpec
from protocols.messages import Completion, CompletionRequest, Failure, Problem, Usage


class Recorder:
    """A deterministic stand-in model that keeps every request it got."""

    def __init__(self) -> None:
        self.seen: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        self.seen.append(request)
        return Completion(
            model=request.model,
            text=f"The answer is \\boxed{{{request.sample_index}}}",
            usage=Usage(prompt_tokens=9, completion_tokens=4),
            source="sim",
        )


PROBLEMS = [
    Problem(
        id="gsm8k-7",
        benchmark="gsm8k",
        question="Janet has 3 ducks.\nEach lays 2 eggs. How many eggs?",
        reference="6",
        answer_format="gsm8k",
    ),
    Problem(id="m-1", benchmark="math500", question="Compute $1+1$.", reference="2", answer_format="boxed"),
]


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Recorder, SimServer]]:
    recorder = Recorder()
    server = SimServer({"sim-a": recorder, "sim-b": Recorder()}, ServerSettings(), ProblemLookup(PROBLEMS))
    runner, port = await start(server, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}/v1", recorder, server
    await runner.cleanup()


async def test_official_client_lists_models_and_gets_chat_and_completions(
    served: tuple[str, Recorder, SimServer],
) -> None:
    url, recorder, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    models = await client.models.list()
    assert sorted(m.id for m in models.data) == ["sim-a", "sim-b"]
    chat = await client.chat.completions.create(
        model="sim-a",
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "1+1?"}],
        temperature=0.3,
        max_tokens=50,
        seed=4,
        n=2,
    )
    assert [c.message.content for c in chat.choices] == ["The answer is \\boxed{0}", "The answer is \\boxed{1}"]
    assert chat.usage is not None and (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (9, 8)
    assert chat.system_fingerprint == "slmsim-sim"
    done = await client.completions.create(model="sim-a", prompt="Q: 1+1?\nA:", max_tokens=8, stop=["\n"])
    assert done.choices[0].text == "The answer is \\boxed{0}"
    assert done.usage is not None and done.usage.total_tokens == 13
    first, _, last = recorder.seen
    assert (first.temperature, first.max_tokens, first.seed, first.messages[0].role) == (0.3, 50, 4, "system")
    assert last.prompt == "Q: 1+1?\nA:" and last.stop == ("\n",)
    await client.close()


async def test_official_client_sees_a_typed_error_for_an_unknown_model(
    served: tuple[str, Recorder, SimServer],
) -> None:
    url, _, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="no-such"):
        await client.chat.completions.create(model="no-such", messages=[{"role": "user", "content": "hi"}])
    await client.close()


USER = {"role": "user", "content": "x"}
BAD_REQUESTS = [
    ("chat/completions", b"{not json", 400, "not valid JSON"),
    ("chat/completions", b"[1, 2]", 400, "JSON object"),
    ("chat/completions", json.dumps({"messages": [{"role": "user", "content": "x"}]}), 400, "'model'"),
    ("chat/completions", json.dumps({"model": "sim-a"}), 400, "'messages'"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": "hi"}), 400, "'messages'"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": [{"role": "wizard", "content": "x"}]}), 400, "role"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": 5}]}), 400, "content"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": ["x"]}), 400, "must be an object"),
    (
        "chat/completions",
        json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": "x"}], "temperature": 9}),
        400,
        "temperature",
    ),
    (
        "chat/completions",
        json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
        400,
        "max_tokens",
    ),
    (
        "chat/completions",
        json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": "x"}], "n": 0}),
        400,
        "'n'",
    ),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "stream": "yes"}), 400, "'stream'"),
    (
        "chat/completions",
        json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": "x"}], "slmsim_meta": {"bogus": 1}}),
        400,
        "slmsim_meta",
    ),
    ("completions", json.dumps({"model": "sim-a", "prompt": 5}), 400, "'prompt'"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "stop": 5}), 400, "'stop'"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "stop": [5]}), 400, "stop"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "seed": "s"}), 400, "seed"),
    ("completions", json.dumps({"model": "sim-a", "prompt": ["a", "b"]}), 400, "'prompt'"),
    ("completions", b"\xff\xfe{", 400, "not valid JSON"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x" * (9 * 1024 * 1024)}), 413, "Too Large"),
    ("completions", json.dumps({"model": "sim-a"}), 400, "'prompt'"),
    ("completions", json.dumps({"model": "sim-z", "prompt": "x"}), 404, "unknown model"),
    ("nowhere", json.dumps({}), 404, "Not Found"),
]


@pytest.mark.parametrize(("path", "body", "status", "needle"), BAD_REQUESTS)
async def test_malformed_requests_get_a_4xx_json_error(
    served: tuple[str, Recorder, SimServer], path: str, body: str | bytes, status: int, needle: str
) -> None:
    url, recorder, _ = served
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.post(f"{url}/{path}", data=body, headers={"Content-Type": "application/json"}) as response,
    ):
        payload = await response.json()
    assert response.status == status
    assert needle in payload["error"]["message"]
    assert recorder.seen == []


async def test_every_reply_is_labelled_simulated(served: tuple[str, Recorder, SimServer]) -> None:
    url, _, _ = served
    body = {"model": "sim-a", "prompt": "x"}
    async with aiohttp.ClientSession() as session:
        for stream in (False, True):
            async with session.post(f"{url}/completions", json={**body, "stream": stream}) as response:
                assert response.status == 200 and response.headers["x-slmsim-source"] == "sim"
                await response.read()


async def test_wrong_method_is_a_json_405(served: tuple[str, Recorder, SimServer]) -> None:
    url, _, _ = served
    async with aiohttp.ClientSession() as session, session.get(f"{url}/chat/completions") as response:
        assert response.status == 405
        assert "error" in await response.json()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Question: Janet has 3 ducks.\nEach lays 2 eggs. How many eggs?\nAnswer:", "gsm8k-7"),
        ("Q: Compute $1+1$. A: 2\n\nQuestion: Compute $1+1$.\nAnswer:", "m-1"),
        ("Janet has 3 ducks.\nEach lays 2 eggs. How many eggs?\nPut the answer after ####.", "gsm8k-7"),
        ("Janet has 3 ducks.\nbut the rest differs", None),
        ("Compute $1+1$", None),
        (
            "Question: Compute $1+1$.\nAnswer: 2\n\nQuestion: Janet has 3 ducks.\nEach lays 2 eggs. How many eggs?",
            "gsm8k-7",
        ),
    ],
)
def test_lookup_finds_the_last_known_question_in_a_prompt(text: str, expected: str | None) -> None:
    found = ProblemLookup(PROBLEMS).find(text)
    assert (found.id if found else None) == expected


async def test_server_fills_the_problem_from_the_prompt_or_from_slmsim_meta(
    served: tuple[str, Recorder, SimServer],
) -> None:
    url, recorder, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    await client.completions.create(model="sim-a", prompt="Question: Compute $1+1$.\nAnswer:")
    meta = {"problem_id": "custom", "role": "judge", "candidates": ["1", "2"]}
    await client.chat.completions.create(
        model="sim-a", messages=[{"role": "user", "content": "hi"}], extra_body={"slmsim_meta": meta}
    )
    await client.close()
    looked_up, given = recorder.seen
    assert looked_up.meta.problem is not None and looked_up.meta.problem.reference == "2"
    assert (given.meta.problem_id, given.meta.role, given.meta.candidates) == ("custom", "judge", ("1", "2"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate_limit=0.1,server_error=0.05,timeout=0.02", FaultSpec(rate_limit=0.1, server_error=0.05, timeout=0.02)),
        ("", FaultSpec()),
        ("malformed=1", FaultSpec(malformed=1.0)),
    ],
)
def test_parse_faults(text: str, expected: FaultSpec) -> None:
    assert parse_faults(text) == expected


@pytest.mark.parametrize(("text", "needle"), [("gremlins=0.1", "gremlins"), ("timeout", "name=rate")])
def test_parse_faults_rejects_bad_input(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_faults(text)


def test_injected_faults_follow_their_rates() -> None:
    server = SimServer(
        {"m": Recorder()}, ServerSettings(faults=FaultSpec(rate_limit=0.1, server_error=0.05), fault_seed=3)
    )
    faults = [server._draw_fault() for _ in range(4000)]
    assert 0.08 < faults.count("rate_limit") / 4000 < 0.12
    assert 0.035 < faults.count("server_error") / 4000 < 0.065
    assert faults.count(None) + faults.count("rate_limit") + faults.count("server_error") == 4000


async def test_official_client_against_the_real_simulator() -> None:
    from experiments.serve_sim import sim_backends

    problem = Problem(
        id="gsm8k-x", benchmark="gsm8k", question="Tom has 3 apples and buys 4 more. How many?", reference="7",
        answer_format="gsm8k",
    )  # fmt: skip
    server = SimServer(sim_backends(["Llama-3.1-8B-Instruct"], 0, 0.0), ServerSettings(), ProblemLookup([problem]))
    runner, port = await start(server, "127.0.0.1", 0)
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
    try:
        assert [m.id for m in (await client.models.list()).data] == ["Llama-3.1-8B-Instruct"]
        messages = [{"role": "user", "content": problem.question}]
        chats = [
            await client.chat.completions.create(model="Llama-3.1-8B-Instruct", messages=messages, seed=1)  # type: ignore[arg-type]
            for _ in range(2)
        ]
        done = await client.completions.create(
            model="Llama-3.1-8B-Instruct", prompt=f"Question: {problem.question}\nAnswer:", max_tokens=200
        )
    finally:
        await client.close()
        await runner.cleanup()
    first, second = (c.choices[0].message.content for c in chats)
    assert first and first == second  # a pure function of the request
    assert chats[0].usage is not None and chats[0].usage.completion_tokens > 0
    assert done.choices[0].text and done.usage is not None and done.usage.prompt_tokens > 0


async def test_official_client_streams_chat_and_completions(served: tuple[str, Recorder, SimServer]) -> None:
    url, _, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    chat = await client.chat.completions.create(
        model="sim-a",
        messages=[{"role": "user", "content": "1+1?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finishes: list[str] = []
    usage = None
    async for chunk in chat:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
        usage = chunk.usage or usage
    assert "".join(pieces) == "The answer is \\boxed{0}" and finishes == ["stop"]
    assert usage is not None and usage.total_tokens == 13
    done = await client.completions.create(model="sim-a", prompt="Q:", stream=True)
    texts = [c.choices[0].text async for c in done if c.choices]
    assert "".join(texts) == "The answer is \\boxed{0}"
    await client.close()
