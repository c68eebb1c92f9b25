"""serve-sim speaks the OpenAI wire format: the official client works, bad requests get a 4xx JSON error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import aiohttp
import openai
import pytest

from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.faults import ServerFaults, parse_faults
from experiments.serve.lookup import ProblemLookup
from protocols.messages import Problem
from tests.experiments.serve_sim_helpers import DUCKS, ONE, PROBLEMS, MakeServer, Served, recorder


async def test_official_client_lists_models_and_gets_chat_and_completions(served: Served) -> None:
    url, recorder, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    models = await client.models.list()
    assert sorted(m.id for m in models.data) == ["sim-a", "sim-b"]
    chat = await client.chat.completions.create(
        model="sim-a",
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": ONE}],
        temperature=0.3,
        max_tokens=50,
        seed=4,
        n=2,
    )
    first, second = (c.message.content or "" for c in chat.choices)
    assert first != second and "\\boxed" in first  # n=2: two distinct samples
    assert chat.usage is not None and chat.usage.completion_tokens == sum(-(-len(t) // 4) for t in (first, second))
    assert chat.system_fingerprint == "slmsim-sim"
    done = await client.completions.create(model="sim-a", prompt=f"Q: {DUCKS}\nA:", max_tokens=8, stop=["\n"])
    assert done.choices[0].text == "Reasoning." and done.choices[0].finish_reason == "stop"  # cut at the stop
    assert done.usage is not None and done.usage.completion_tokens == 3
    one, _, last = recorder.requests
    assert (one.temperature, one.max_tokens, one.messages[0].role, one.meta.problem_id) == (0.3, 50, "system", "m-1")
    assert last.prompt == f"Q: {DUCKS}\nA:" and last.meta.problem_id == "gsm8k-7"
    await client.close()


async def test_official_client_sees_a_typed_error_for_an_unknown_model(served: Served) -> None:
    url, _, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="no-such"):
        await client.chat.completions.create(model="no-such", messages=[{"role": "user", "content": "hi"}])
    await client.close()


def chat_body(**extra: object) -> str:
    return json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": ONE}], **extra})


DEEP = '{"model": "sim-a", "messages": ' + "[" * 1200 + "]" * 1200 + "}"
BAD_REQUESTS = [
    ("chat/completions", b"{not json", 400, "not valid JSON"),
    ("chat/completions", b"[1, 2]", 400, "JSON object"),
    ("chat/completions", json.dumps({"messages": [{"role": "user", "content": "x"}]}), 400, "'model'"),
    ("chat/completions", json.dumps({"model": "sim-a"}), 400, "'messages'"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": "hi"}), 400, "'messages'"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": [{"role": "wizard", "content": "x"}]}), 400, "role"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": [{"role": ["user"], "content": "x"}]}), 400, "role"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": [{"role": "user", "content": 5}]}), 400, "content"),
    ("chat/completions", json.dumps({"model": "sim-a", "messages": ["x"]}), 400, "must be an object"),
    ("chat/completions", chat_body(temperature=9), 400, "temperature"),
    ("chat/completions", chat_body(max_tokens=-1), 400, "max_tokens"),
    ("chat/completions", chat_body(n=0), 400, "'n'"),
    ("chat/completions", chat_body(slmsim_meta={"bogus": 1}), 400, "slmsim_meta"),
    ("chat/completions", chat_body(functions=[{"name": "f"}]), 400, "unsupported request field 'functions'"),
    ("chat/completions", chat_body(tools=[{"type": "function"}]), 400, "tools[0]"),
    ("chat/completions", chat_body(tool_choice="sometimes"), 400, "tool_choice"),
    ("chat/completions", chat_body(tool_choice="required"), 400, "tool_choice"),
    ("chat/completions", chat_body(response_format={"type": "yaml"}), 400, "response_format"),
    ("chat/completions", chat_body(top_logprobs=3), 400, "top_logprobs"),
    ("chat/completions", chat_body(stop=["a", "b", "c", "d", "e"]), 400, "'stop'"),
    ("chat/completions", '{"model": "sim-a", "messages": [{"role": "user", "content": "\\ud800"}]}', 400, "surrogate"),
    ("chat/completions", DEEP, 400, "nests deeper"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "stream": "yes"}), 400, "'stream'"),
    ("completions", json.dumps({"model": "sim-a", "prompt": 5}), 400, "'prompt'"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "stop": 5}), 400, "'stop'"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "stop": [5]}), 400, "stop"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "seed": "s"}), 400, "seed"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x", "echo": True}), 400, "echo"),
    ("completions", json.dumps({"model": "sim-a", "prompt": ["a", "b"]}), 400, "'prompt'"),
    ("completions", b"\xff\xfe{", 400, "not valid JSON"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x" * (9 * 1024 * 1024)}), 413, "too large"),
    ("completions", json.dumps({"model": "sim-a", "prompt": "x " * 600_000}), 400, "context limit"),
    ("completions", json.dumps({"model": "sim-a"}), 400, "'prompt'"),
    ("completions", json.dumps({"model": "sim-z", "prompt": "x"}), 404, "unknown model"),
    ("nowhere", json.dumps({}), 404, "Not Found"),
]


async def _post(url: str, body: str | bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), auto_decompress=False) as session,
        session.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})}) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(("path", "body", "status", "needle"), BAD_REQUESTS)
async def test_malformed_requests_get_a_4xx_json_error(
    served: Served, path: str, body: str | bytes, status: int, needle: str
) -> None:
    url, recorder, _ = served
    code, payload = await _post(f"{url}/{path}", body)
    assert code == status
    assert needle in payload["error"]["message"]  # type: ignore[index]
    assert len(json.dumps(payload)) < 600  # never echoes unbounded input
    assert recorder.requests == []


async def test_content_encoding_is_checked_not_trusted(served: Served) -> None:
    url, recorder, _ = served
    code, payload = await _post(f"{url}/chat/completions", chat_body(), {"Content-Encoding": "gzip"})
    assert code == 400 and "gzip" in payload["error"]["message"]  # type: ignore[index]
    code, payload = await _post(
        f"{url}/chat/completions", gzip.compress(chat_body().encode()), {"Content-Encoding": "gzip"}
    )
    assert code == 200 and len(recorder.requests) == 1  # real gzip is fine


async def test_a_huge_model_name_is_not_echoed(served: Served) -> None:
    url, _, _ = served
    code, payload = await _post(f"{url}/chat/completions", chat_body(model="m" * 1_000_000))
    assert code == 404 and len(json.dumps(payload)) < 600


async def test_every_reply_is_labelled_simulated_and_names_its_problem(served: Served) -> None:
    url, _, _ = served
    async with aiohttp.ClientSession() as session:
        for stream in (False, True):
            for prompt, problem in ((f"Question: {ONE}", "math500/m-1"), ("Write a haiku.", "none")):
                body = {"model": "sim-a", "prompt": prompt, "stream": stream}
                async with session.post(f"{url}/completions", json=body) as response:
                    assert response.status == 200 and response.headers["x-slmsim-source"] == "sim"
                    assert response.headers["x-slmsim-problem"] == problem
                    await response.read()


async def test_wrong_method_is_a_json_405(served: Served) -> None:
    url, _, _ = served
    async with aiohttp.ClientSession() as session, session.get(f"{url}/chat/completions") as response:
        assert response.status == 405
        assert "error" in await response.json()


async def test_unrecognised_prompts_get_an_honest_reply_never_an_answer(make_server: MakeServer) -> None:
    url, recorder, _ = await make_server()
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    for prompt in ("Write a haiku about autumn.", "What is the capital of France? Put it in \\boxed{}."):
        chat = await client.chat.completions.create(model="sim-a", messages=[{"role": "user", "content": prompt}])
        text = chat.choices[0].message.content or ""
        assert "no simulated answer" in text and "\\boxed" not in text and "####" not in text
    await client.chat.completions.create(model="sim-a", messages=[{"role": "user", "content": ONE}])
    assert (
        recorder.requests[-1].meta.problem_id == "m-1" and len(recorder.requests) == 1
    )  # misses never reach the model
    async with aiohttp.ClientSession() as session, session.get(f"{url}/slmsim/stats") as response:
        stats = await response.json()
    assert (stats["recognised"], stats["missed"], stats["problems_indexed"]) == (1, 2, 2)
    strict_url, _, _ = await make_server(strict=True)
    strict = openai.AsyncOpenAI(base_url=strict_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError, match="no known problem"):
        await strict.chat.completions.create(model="sim-a", messages=[{"role": "user", "content": "A haiku, please."}])
    await client.close()
    await strict.close()


async def test_aliases_default_card_and_model_retrieval(make_server: MakeServer) -> None:
    url, recorder, _ = await make_server(aliases={"gpt-3.5-turbo-0301": "sim-a"})
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    assert (await client.models.retrieve("gpt-3.5-turbo-0301")).id == "gpt-3.5-turbo-0301"
    assert (await client.models.retrieve("sim-b")).owned_by == "slmsim-sim"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    await client.chat.completions.create(model="gpt-3.5-turbo-0301", messages=[{"role": "user", "content": ONE}])
    assert recorder.requests[-1].model == "sim-a"
    url, recorder, _ = await make_server(default_card="sim-a")
    client2 = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    reply = await client2.chat.completions.create(
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo", messages=[{"role": "user", "content": ONE}]
    )
    assert recorder.requests[-1].model == "sim-a" and reply.model == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    await client.close()
    await client2.close()


def test_an_alias_to_a_card_not_served_is_refused() -> None:
    with pytest.raises(ValueError, match="not a served card"):
        SimServer({"sim-a": recorder()}, ServerSettings(aliases={"gpt-4": "nope"}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rate_limit=0.1,server_error=0.05,timeout=0.02",
            ServerFaults(rate_limit=0.1, server_error=0.05, timeout=0.02),
        ),
        ("", ServerFaults()),
        ("malformed=1", ServerFaults(malformed=1.0)),
        ("drop=0.2,malformed=0.1", ServerFaults(drop=0.2, malformed=0.1)),
    ],
)
def test_parse_faults(text: str, expected: ServerFaults) -> None:
    assert parse_faults(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"), [("gremlins=0.1", "gremlins"), ("timeout", "name=rate"), ("drop=lots", "not a number")]
)
def test_parse_faults_rejects_bad_input(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_faults(text)


def test_injected_faults_follow_their_rates() -> None:
    faults = ServerFaults(rate_limit=0.1, server_error=0.05, malformed=0.05, drop=0.05)
    server = SimServer({"m": recorder()}, ServerSettings(faults=faults, fault_seed=3))
    drawn = [server.faults.draw() for _ in range(4000)]
    assert 0.08 < drawn.count("rate_limit") / 4000 < 0.12
    for kind in ("server_error", "malformed", "drop"):
        assert 0.035 < drawn.count(kind) / 4000 < 0.065
    assert drawn.count(None) + sum(server.faults.counts.values()) == 4000


async def test_official_client_streams_chat_and_completions_in_several_chunks(served: Served) -> None:
    url, _, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": ONE}]
    plain = await client.chat.completions.create(model="sim-a", messages=messages, seed=3)  # type: ignore[arg-type]
    chat = await client.chat.completions.create(  # type: ignore[call-overload]
        model="sim-a",
        messages=messages,
        seed=3,
        max_tokens=60,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finishes: list[str] = []
    usage = None
    async for chunk in chat:
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
        usage = chunk.usage or usage
    assert "".join(pieces) == plain.choices[0].message.content and finishes == ["stop"]
    assert usage is not None and plain.usage is not None and usage.total_tokens == plain.usage.total_tokens
    done = await client.completions.create(model="sim-a", prompt=f"Question: {ONE}", seed=3, stream=True)
    texts = [c.choices[0].text async for c in done if c.choices]
    assert len(texts) >= 1 and "\\boxed" in "".join(texts)
    await client.close()


async def test_real_simulator_answers_a_known_problem_with_text_matching_usage() -> None:
    from experiments.serve.cli import sim_backends

    server = SimServer(sim_backends(["Llama-3.1-8B-Instruct"], 0, 0.0), ServerSettings(), ProblemLookup(PROBLEMS))
    runner, port = await start(server, "127.0.0.1", 0)
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
    try:
        chat = await client.chat.completions.create(
            model="Llama-3.1-8B-Instruct", messages=[{"role": "user", "content": DUCKS}], seed=1
        )
    finally:
        await client.close()
        await runner.cleanup()
    text = chat.choices[0].message.content or ""
    assert chat.usage is not None and 0.9 < len(text) / (4 * chat.usage.completion_tokens) <= 1.0
    assert text.rstrip().splitlines()[-1].startswith("####") and PROBLEMS[0].reference  # the answer is still last


LONGER = Problem(id="m-2", benchmark="math500", question="Compute $1+1$ exactly. Then double it.", reference="4",
                 answer_format="boxed")  # fmt: skip
LATEX = Problem(id="m-3", benchmark="math500", question="Simplify $\\frac{1}{2} + \\left(x\\right)$ for 'all' x.",
                reference="x", answer_format="boxed")  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Question: {DUCKS}\nAnswer:", "gsm8k-7"),
        (f"Can you solve the following math problem? {DUCKS.replace(chr(10), ' ')} Explain your reasoning.", "gsm8k-7"),
        (f"Question 1:{DUCKS}", "gsm8k-7"),
        (f"Q: {ONE} A: 2\n\nQuestion: {DUCKS}\nAnswer:", "gsm8k-7"),  # few-shot: the asked question is last
        (f"{DUCKS}\n\nAssistant: 6\n\nUser: double-check your answer, please.", "gsm8k-7"),  # an earlier turn
        (f"“{DUCKS.replace(chr(39), chr(8217))}”", "gsm8k-7"),
        ("Simplify $\\dfrac{1}{2}+(x)$ for \u2018all\u2019 x.", "m-3"),  # LaTeX and quotes spelled differently
        ("Compute $1 + 1$ exactly. Then double it.", "m-2"),  # the longer question, not its prefix
        ("Janet has 3 ducks.\nbut the rest differs", None),
        ("Compute $1+1$", None),
        ("", None),
    ],
)
def test_lookup_finds_the_asked_question_anywhere(text: str, expected: str | None) -> None:
    found = ProblemLookup([*PROBLEMS, LONGER, LATEX]).find(text)
    assert (found.id if found else None) == expected


def test_lookup_is_one_pass_over_a_big_prompt() -> None:
    lookup = ProblemLookup(PROBLEMS)
    big = ("Janet has 3 ducks. " * 40_000) + DUCKS  # 800 kB of anchor hits that fail, then the question
    assert (found := lookup.find(big)) is not None and found.id == "gsm8k-7"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--cards", "NoSuchCard"], "unknown card 'NoSuchCard'"),
        (["--port", "99999"], "--port 99999"),
        (["--problems", "/nonexistent/p.jsonl"], "cannot read"),
        (["--alias", "gpt4"], "NAME=CARD"),
        (["--alias", "gpt4=Nope"], "'Nope' is not a served card"),
        (["--faults", "drop=2"], "--faults drop"),
        (["--faults", "gremlins=0.1"], "gremlins"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.serve.cli import main

    assert main([*argv, "--no-lookup"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_a_problems_file_is_loaded_and_a_bad_line_is_named(tmp_path: Path) -> None:
    from experiments.serve.lookup import load_problem_file

    good = tmp_path / "mine.jsonl"
    good.write_text(
        json.dumps({"id": "q1", "question": "How many legs do three spiders have?", "reference": "24"}) + "\n"
    )
    (found,) = load_problem_file(good)
    assert (found.benchmark, found.answer_format) == ("mine", "boxed")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "question": "x"}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_problem_file(bad)
