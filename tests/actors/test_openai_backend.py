"""The openai backend against the real simulated server (real HTTP on 127.0.0.1), faults included."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from actors.backends.fake import FakeBackend
from actors.backends.openai import OpenAIBackend, parse_retry_after, render_prompt, wire_seed
from actors.backends.wrappers import RetryBackend
from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.faults import ServerFaults
from experiments.serve.http import HttpServer
from experiments.serve.lookup import ProblemLookup
from protocols.config import ModelSpec, Price
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, Problem, Usage

KEY = "sk-test-SECRET-0123456789"


def echo_backend() -> FakeBackend:
    """The stand-in model: the test double echoing the end of the prompt (``.requests`` keeps what it was asked)."""

    def reply(request: CompletionRequest) -> str:
        text = request.prompt if request.prompt is not None else request.messages[-1].content
        return f"echo[{request.sample_index}]: {text[-20:]} #### 7"

    return FakeBackend(reply, usage=Usage(prompt_tokens=11, completion_tokens=5))


LOOKUP = ProblemLookup(
    [
        Problem(id=f"p{i}", benchmark="gsm8k", question=q, reference="7", answer_format="gsm8k")
        for i, q in enumerate(("What is 3+4?", "3+4?"))
    ]
)
Serve = Callable[..., Awaitable[tuple[str, SimServer, FakeBackend]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a SimServer on a free port; returns (base_url, server, echo backend)."""
    runners: list[HttpServer] = []

    async def _start(**settings: object) -> tuple[str, SimServer, FakeBackend]:
        echo = echo_backend()
        server = SimServer({"echo-1b": echo}, ServerSettings(**settings), LOOKUP)  # type: ignore[arg-type]
        runner, port = await start(server, "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{port}/v1", server, echo

    yield _start
    for runner in runners:
        await runner.cleanup()


HTTP_CLIENT = {"name": "http1"}


@pytest.fixture(autouse=True, params=["http1", "aiohttp"])
def http_client(request: pytest.FixtureRequest) -> str:
    """Every test here runs over both HTTP clients the backend offers (``http_client``)."""
    HTTP_CLIENT["name"] = request.param
    return str(request.param)


def spec(base_url: str, **kw: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "echo",
        "backend": "openai",
        "base_url": base_url,
        "model_id": "echo-1b",
        "http_client": HTTP_CLIENT["name"],
    }
    fields.update(kw)
    return ModelSpec.model_validate(fields)


PROMPT = CompletionRequest(model="echo", prompt="Question: 3+4?\nAnswer:", max_tokens=32, stop=("\n\n",))
CHAT = CompletionRequest(model="echo", messages=(ChatMessage(role="user", content="What is 3+4?"),))


@pytest.mark.parametrize(("endpoint", "request_"), [("chat", CHAT), ("completions", PROMPT), ("chat", PROMPT)])
async def test_endpoints_return_sim_served_completions_with_usage_and_cost(
    serve: Serve, endpoint: str, request_: CompletionRequest
) -> None:
    url, _, echo = await serve()
    backend = OpenAIBackend(spec(url, endpoint=endpoint, price=Price(input=1.0, output=2.0)))
    try:
        reply = await backend.complete(request_)
    finally:
        await backend.aclose()
    assert isinstance(reply, Completion), reply
    # serve-sim says it is the simulator (header and fingerprint): never recorded as live.
    assert reply.source == "sim-served" and reply.model == "echo"
    assert reply.text.endswith("#### 7")
    tokens = -(-len(reply.text) // 4)  # the server reports the length of the text it sends
    assert reply.usage == Usage(prompt_tokens=11, completion_tokens=tokens)
    assert reply.cost_usd == pytest.approx((11 * 1.0 + tokens * 2.0) / 1e6)
    assert reply.latency_s > 0
    assert echo.requests[-1].max_tokens == request_.max_tokens


@pytest.mark.parametrize(
    ("headers", "fingerprint", "source"),
    [({}, None, "live"), ({}, "fp_44709d6fcb", "live"), ({"x-slmsim-source": "sim"}, None, "sim-served"),
     ({}, "slmsim-sim", "sim-served")],
)  # fmt: skip
async def test_source_is_what_the_server_says(headers: dict[str, str], fingerprint: str | None, source: str) -> None:
    async def real(_: web.Request) -> web.Response:
        body = {
            "choices": [{"message": {"content": "#### 7"}, "finish_reason": "stop"}],
            "system_fingerprint": fingerprint,
        }
        return web.json_response({**body, "usage": {"prompt_tokens": 3, "completion_tokens": 2}}, headers=headers)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", real)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    backend = OpenAIBackend(spec(f"http://127.0.0.1:{runner.addresses[0][1]}/v1"))
    try:
        reply = await backend.complete(CHAT)
    finally:
        await backend.aclose()
        await runner.cleanup()
    assert isinstance(reply, Completion) and reply.source == source


def test_each_sample_index_is_sent_as_its_own_seed() -> None:
    backend = OpenAIBackend(spec("http://127.0.0.1:9/v1"))
    seeds = {backend.body(CHAT.model_copy(update={"sample_index": i, "seed": 3}))["seed"] for i in range(9)}
    assert len(seeds) == 9  # k samples are k draws on a server that honours seed
    assert wire_seed(CHAT.model_copy(update={"seed": 3})) == backend.body(CHAT.model_copy(update={"seed": 3}))["seed"]


def test_wire_seed_is_a_fresh_draw_per_problem_and_model_and_the_same_for_the_same_request() -> None:
    # Keyed by the sample index alone, sample j reused one random stream on every problem
    # (the first Gemma pool: sample 0 right on 37.5% of problems, sample 1 on 2.5%).
    questions = [f"Question: What is {a} + {b}?\nAnswer:" for a in range(10) for b in range(3)]
    for j in range(5):
        seeds = {wire_seed(PROMPT.model_copy(update={"prompt": q, "sample_index": j})) for q in questions}
        assert len(seeds) == len(questions)
    other_model = PROMPT.model_copy(update={"model": "other"})
    other_run = PROMPT.model_copy(update={"seed": 1})
    assert len({wire_seed(PROMPT), wire_seed(other_model), wire_seed(other_run)}) == 3
    assert wire_seed(PROMPT) == wire_seed(PROMPT.model_copy())
    # a temperature changes how a draw is used, not which draw it is (common random numbers)
    assert wire_seed(PROMPT) == wire_seed(PROMPT.model_copy(update={"temperature": 0.8}))
    # a stable hash, not Python's per-process salted hash(): the same seed in every process
    assert wire_seed(PROMPT) == 2006023956
    assert all(0 <= wire_seed(CHAT.model_copy(update={"sample_index": i})) < 2**31 - 1 for i in range(50))


async def test_a_retry_resends_the_same_seed() -> None:
    seen: list[int] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append((await request.json())["seed"])
        if len(seen) == 1:
            return web.json_response({"error": "busy"}, status=503)
        body = {"choices": [{"message": {"content": "#### 7"}, "finish_reason": "stop"}]}
        return web.json_response({**body, "usage": {"prompt_tokens": 3, "completion_tokens": 2}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", flaky)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    backend = RetryBackend(OpenAIBackend(spec(f"http://127.0.0.1:{runner.addresses[0][1]}/v1")), 2, base_delay_s=0.01)
    request = CHAT.model_copy(update={"sample_index": 4, "seed": 9})
    try:
        reply = await backend.complete(request)
    finally:
        await backend.aclose()
        await runner.cleanup()
    assert isinstance(reply, Completion) and reply.attempts == 2
    assert seen == [wire_seed(request)] * 2  # a retry is the same sample, not a new draw


def test_completions_body_renders_messages_and_sends_wire_model_id() -> None:
    backend = OpenAIBackend(spec("http://127.0.0.1:9/v1", endpoint="completions"))
    request = CompletionRequest(
        model="echo",
        messages=(ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="2+2?")),
        seed=5,
    )
    body = backend.body(request)
    assert body["model"] == "echo-1b" and body["seed"] == wire_seed(request) and body["n"] == 1
    assert body["prompt"] == "System: Be brief.\n\nUser: 2+2?\n\nAssistant:"
    assert "meta" not in body and "messages" not in body
    assert render_prompt((ChatMessage(role="user", content="only"),)) == "only"


def test_missing_key_variable_is_named_and_value_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLMSIM_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="SLMSIM_TEST_KEY"):
        OpenAIBackend(spec("http://127.0.0.1:9/v1", api_key_env="SLMSIM_TEST_KEY"))
    monkeypatch.setenv("SLMSIM_TEST_KEY", KEY)
    backend = OpenAIBackend(spec("http://127.0.0.1:9/v1", api_key_env="SLMSIM_TEST_KEY"))
    assert KEY not in repr(backend)
    assert backend.scrub(f"bad key {KEY} here") == "bad key *** here"


async def test_key_is_sent_as_bearer_and_scrubbed_from_errors(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def leaky(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"error": f"invalid key {request.headers['Authorization']}"}, status=401)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", leaky)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("SLMSIM_TEST_KEY", KEY)
    backend = OpenAIBackend(spec(f"http://127.0.0.1:{port}/v1", api_key_env="SLMSIM_TEST_KEY"))
    try:
        reply = await backend.complete(CHAT)
    finally:
        await backend.aclose()
        await runner.cleanup()
    assert seen == [f"Bearer {KEY}"]
    assert isinstance(reply, Failure) and reply.error == "client" and not reply.retryable
    assert KEY not in reply.message and "***" in reply.message


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        (ServerFaults(rate_limit=1.0), "rate_limit"),
        (ServerFaults(server_error=1.0), "server"),
        (ServerFaults(timeout=1.0), "timeout"),
        (ServerFaults(malformed=1.0), "malformed"),
        (ServerFaults(drop=1.0), "connection"),
    ],
)
async def test_each_injected_fault_is_a_typed_retryable_failure(serve: Serve, faults: ServerFaults, error: str) -> None:
    url, _, _ = await serve(faults=faults, retry_after_s=3, hang_s=60)
    # A short client timeout only where the server never answers (the injected hang): an
    # immediate 429/5xx/cut body/drop on a loaded machine can outlast 0.3 s and would come
    # back as "timeout" instead of its own kind.
    backend = OpenAIBackend(spec(url, timeout_s=0.3 if error == "timeout" else 30.0))
    try:
        reply = await backend.complete(CHAT)
    finally:
        await backend.aclose()
    assert isinstance(reply, Failure), reply
    assert (reply.error, reply.retryable, reply.model) == (error, True, "echo")
    assert reply.retry_after_s == (3.0 if error == "rate_limit" else None)


async def test_unknown_model_is_a_non_retryable_client_failure_at_once(serve: Serve) -> None:
    url, server, _ = await serve()
    backend = RetryBackend(OpenAIBackend(spec(url, model_id="no-such-model")), max_retries=3)
    try:
        reply = await backend.complete(CHAT)
    finally:
        await backend.aclose()
    assert isinstance(reply, Failure) and reply.error == "client" and reply.attempts == 1
    assert "no-such-model" in reply.message and "HTTP 404" in reply.message
    assert server.counts["requests"] == 1


async def test_retries_through_mixed_faults_until_every_request_is_answered(serve: Serve) -> None:
    url, server, _ = await serve(
        faults=ServerFaults(rate_limit=0.2, server_error=0.1, timeout=0.05, malformed=0.05, drop=0.05),
        retry_after_s=0,
        hang_s=60,
        fault_seed=7,
    )
    # The client timeout is far above an ordinary reply's time, and the injected hang far above the
    # timeout (cleanup cancels the hanging handlers). Even so, on a loaded machine an undelayed reply
    # can outlast it and be retried too: 56 retries for 51 injected faults under 5 busy loops at 2 s.
    inner = OpenAIBackend(spec(url, timeout_s=3.0, max_in_flight=16))
    # 30 retries: faults hit 45% of attempts, so 11 in a row for one of 60 requests is a ~1% event
    # (seen under load, where slow replies that time out raise the odds): it must never decide the test.
    backend = RetryBackend(inner, max_retries=30, base_delay_s=0.01, max_delay_s=0.05)
    requests = [CHAT.model_copy(update={"sample_index": i}) for i in range(60)]
    try:
        replies = await asyncio.gather(*(backend.complete(r) for r in requests))
    finally:
        await backend.aclose()
    assert all(isinstance(r, Completion) for r in replies), [r for r in replies if isinstance(r, Failure)]
    retries = sum(r.attempts - 1 for r in replies)
    assert retries == backend.retries > 0
    kinds = ("rate_limit", "server_error", "timeout", "malformed", "drop")
    assert all(server.counts[k] > 0 for k in kinds), server.counts  # every kind fired...
    faults = sum(server.counts[k] for k in kinds)
    # ...and each was retried, none kept as the final reply (all 60 are completions above). At least
    # one retry per fault, not exactly one: a reply that outlasted the client timeout is retried too.
    assert retries >= faults
    # Every fault was a request the server saw; every retry is one more request (at most: a retry
    # whose attempt timed out before it was sent never reached the server).
    assert 60 + faults <= server.counts["requests"] <= 60 + retries


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


class Gate:
    """A stand-in model that holds every request until ``expected`` are in flight at once (or a deadline)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.now = self.peak = 0
        self.full = asyncio.Event()

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        self.now += 1
        self.peak = max(self.peak, self.now)
        if self.now >= self.expected:
            self.full.set()
        # Fewer arrived together: the peak says how many. Generous: the first to arrive must still be
        # waiting when the 150th comes, and on a loaded machine opening 150 connections is slow (the
        # test took 8.5 s under 5 busy loops, against a 5 s wait); a capped pool only fails slower.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.full.wait(), timeout=60.0)
        self.now -= 1
        return Completion(
            model=request.model, text="#### 7", usage=Usage(prompt_tokens=1, completion_tokens=2), source="sim"
        )


async def test_connection_pool_is_sized_to_the_in_flight_limit() -> None:
    gate = Gate(150)
    server = SimServer({"echo-1b": gate}, ServerSettings(), LOOKUP)
    runner, port = await start(server, "127.0.0.1", 0)
    backend = OpenAIBackend(spec(f"http://127.0.0.1:{port}/v1", max_in_flight=150))
    try:
        replies = await asyncio.gather(
            *(backend.complete(CHAT.model_copy(update={"sample_index": i})) for i in range(150))
        )
        assert backend._pool is not None and backend._pool.limit == 150
    finally:
        await backend.aclose()
        await runner.cleanup()
    assert all(isinstance(r, Completion) for r in replies)
    # All 150 reached the model at once: a default cap of 100 connections (aiohttp's) would hold 50 back.
    assert gate.peak == 150
