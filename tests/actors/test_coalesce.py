"""Streaming calls: one call per event-loop turn, each reply as soon as it is done, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from actors.coalesce import StreamBatcher, completed_groups
from tests.actors.stream_fakes import StreamMethod


async def _after(delay_s: float, value: str) -> str:
    await asyncio.sleep(delay_s)
    return value


async def _collect(calls: list, **window: float) -> list[list[tuple[int, str]]]:
    return [group async for group in completed_groups(calls, **window)]


async def test_groups_come_back_in_finishing_order_with_positions() -> None:
    # The slow call finishes only once the fast group is out (not after a 0.2 s sleep, which a
    # stalled process on a loaded machine could oversleep into the fast group).
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "slow"

    stream = completed_groups([slow(), _after(0.0, "fast"), _after(0.0, "fast2")], fraction=0.0)
    # A stream in call order would wait on the held call: the bound makes that a failure, not a hang.
    assert await asyncio.wait_for(anext(stream), 30) == [(1, "fast"), (2, "fast2")]
    release.set()
    assert [group async for group in stream] == [[(0, "slow")]]


async def test_immediate_replies_are_one_group_and_a_burst_is_gathered_within_the_window() -> None:
    assert await _collect([_after(0, str(n)) for n in range(5)]) == [[(n, str(n)) for n in range(5)]]
    # 1 ms apart after 0.3 s: a 1% window (3 ms) gathers neighbours, no reply waits a percent of its age more.
    calls = [_after(0.3 + 0.001 * n, str(n)) for n in range(6)]
    groups = await _collect(calls, fraction=0.01, max_window_s=0.005)
    assert sum(len(g) for g in groups) == 6 and len(groups) < 6


async def test_an_abandoned_stream_cancels_what_is_still_running() -> None:
    never = asyncio.get_running_loop().create_future()

    async def wait_forever() -> str:
        await never
        return "never"

    stream = completed_groups([_after(0, "a"), wait_forever()])
    assert await anext(stream) == [(0, "a")]
    await stream.aclose()
    await asyncio.sleep(0)
    assert never.cancelled()


def _echo(held: dict[str, asyncio.Event] | None = None) -> StreamMethod:
    async def reply(item: str) -> str:
        if held and item in held:
            await held[item].wait()
        return f"r-{item}"

    async def gen(items: list[str]) -> AsyncIterator[list[tuple[int, str]]]:
        async for group in completed_groups([reply(i) for i in items], fraction=0.0):
            yield group

    return StreamMethod(gen)


async def test_one_call_a_turn_and_no_reply_waits_for_a_slower_one() -> None:
    held = {"slow": asyncio.Event()}
    method = _echo(held)
    batcher: StreamBatcher[str, str] = StreamBatcher(method.remote, lambda e: None)
    fast = asyncio.ensure_future(batcher.submit("fast"))
    slow = asyncio.ensure_future(batcher.submit("slow"))
    assert await fast == "r-fast"
    assert not slow.done(), "the fast reply must not wait for the slow one"
    held["slow"].set()
    assert await slow == "r-slow"
    assert method.calls == [["fast", "slow"]]
    assert await batcher.submit("later") == "r-later" and len(method.calls) == 2


async def test_a_large_turn_is_split_into_bounded_calls() -> None:
    method = _echo()
    batcher: StreamBatcher[str, str] = StreamBatcher(method.remote, lambda e: None)
    replies = await asyncio.gather(*(batcher.submit(str(n)) for n in range(batcher.max_batch + 3)))
    assert replies == [f"r-{n}" for n in range(batcher.max_batch + 3)]
    assert [len(c) for c in method.calls] == [batcher.max_batch, 3]


async def test_an_error_is_mapped_for_every_waiting_item_or_raised_in_each() -> None:
    async def broken(items: list[str]) -> AsyncIterator[list[tuple[int, str]]]:
        yield [(0, "first")]
        raise ConnectionError("actor died")

    mapped: StreamBatcher[str, str] = StreamBatcher(StreamMethod(broken).remote, lambda e: f"failed: {e}")
    replies = await asyncio.gather(*(mapped.submit(s) for s in "abc"))
    assert replies == ["first", "failed: actor died", "failed: actor died"]
    raised: StreamBatcher[str, str] = StreamBatcher(StreamMethod(broken).remote, lambda e: None)
    results = await asyncio.gather(*(raised.submit(s) for s in "abc"), return_exceptions=True)
    assert results[0] == "first" and all(isinstance(r, ConnectionError) for r in results[1:])


async def test_items_a_rerun_stream_never_answered_are_sent_again() -> None:
    # Ray re-runs a generator on a restarted actor and skips the yields already reported;
    # those positions then belong to other items, which this stream never answers.
    async def skips_odd(items: list[str]) -> AsyncIterator[list[tuple[int, str]]]:
        yield [(n, f"r-{s}") for n, s in enumerate(items) if n % 2 == 0 or len(items) == 1]

    method = StreamMethod(skips_odd)
    batcher: StreamBatcher[str, str] = StreamBatcher(method.remote, lambda e: None)
    assert await asyncio.gather(*(batcher.submit(s) for s in "abcd")) == ["r-a", "r-b", "r-c", "r-d"]
    assert method.calls == [list("abcd"), ["b", "d"], ["d"]]


async def test_an_item_never_answered_after_every_resend_raises_instead_of_hanging() -> None:
    async def answers_nothing(items: list[str]) -> AsyncIterator[list[tuple[int, str]]]:
        if False:
            yield []

    batcher: StreamBatcher[str, str] = StreamBatcher(StreamMethod(answers_nothing).remote, lambda e: None)
    with pytest.raises(RuntimeError, match="without answering"):
        await asyncio.wait_for(batcher.submit("x"), 5)


async def test_a_cancelled_caller_does_not_break_the_call() -> None:
    held = {"a": asyncio.Event(), "b": asyncio.Event()}
    batcher: StreamBatcher[str, str] = StreamBatcher(_echo(held).remote, lambda e: None)
    first = asyncio.ensure_future(batcher.submit("a"))
    second = asyncio.ensure_future(batcher.submit("b"))
    await asyncio.sleep(0.01)
    first.cancel()
    for event in held.values():
        event.set()
    assert await second == "r-b"
    with pytest.raises(asyncio.CancelledError):
        await first


class Span:
    """A value pydantic cannot serialise (a user's object in ``Problem.metadata``)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Span) and other.n == self.n

    def __hash__(self) -> int:
        return self.n


def test_the_hot_streams_carry_every_message_kind_unchanged_as_json() -> None:
    from actors.model import WIRE as MODEL_WIRE
    from actors.runner import WIRE as RUNNER_WIRE
    from protocols.messages import (
        CallRecord,
        ChatMessage,
        Completion,
        CompletionRequest,
        Failure,
        NoteRecord,
        Problem,
        ProblemResult,
        RequestMeta,
        Totals,
        Usage,
    )

    problem = Problem(
        id="p/1", benchmark="b", question="ünï ✓ 1/3?", reference="\\frac{1}{3}", answer_format="boxed",
        choices=("a", "b"), level=3, metadata={"steps": 2, "solution": "x", "nested": {"k": [1, 2.5]}},
    )  # fmt: skip
    request = CompletionRequest(
        model="m", messages=(ChatMessage(role="user", content="q"),), temperature=0.7, max_tokens=64,
        stop=("\n\n",), seed=3, sample_index=2,
        meta=RequestMeta(problem=problem, role="aggregator", candidates=("1", None), step=1, extra={"round": 2}),
    )  # fmt: skip
    completion = Completion(
        model="m", text="42", usage=Usage(prompt_tokens=10, completion_tokens=5), latency_s=0.1234567, source="sim"
    )
    failure = Failure(error="rate_limit", message="429", retryable=True, model="m", retry_after_s=1.5)
    result = ProblemResult(
        run_id="r", problem_id="p/1", index=0, benchmark="b", orchestrator="o", final_text="42", answer="42",
        reference="42", correct=True, score=1.0, error=None, wall_s=0.30000000000000004,
        totals=Totals(usage=Usage(prompt_tokens=10, completion_tokens=5), calls=2, sources=("sim",)),
        trace=(CallRecord(model="m", role="solver", reply=completion),
               CallRecord(model="m", role="verifier", reply=failure),
               NoteRecord(label="vote", data={"votes": {"42": 2}})),
    )  # fmt: skip
    assert RUNNER_WIRE.load_items(RUNNER_WIRE.dump_items([(problem, 7)])) == [(problem, 7)]
    assert RUNNER_WIRE.load_group(RUNNER_WIRE.dump_group([(0, result)])) == [(0, result)]
    assert MODEL_WIRE.load_items(MODEL_WIRE.dump_items([request])) == [request]
    replies = MODEL_WIRE.load_group(MODEL_WIRE.dump_group([(1, completion), (0, failure)]))
    assert replies == [(1, completion), (0, failure)]
    assert [type(reply).__name__ for _, reply in replies] == ["Completion", "Failure"]
    # A value JSON cannot carry goes pickled, and still arrives.
    odd = problem.model_copy(update={"metadata": {"span": Span(2)}})
    ((back, _),) = RUNNER_WIRE.load_items(RUNNER_WIRE.dump_items([(odd, 1)]))
    assert back.metadata["span"] == Span(2)
