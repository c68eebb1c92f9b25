"""BatchingRemoteModel: one actor call a turn while replies are immediate, one a problem when they take time."""

from __future__ import annotations

import asyncio
from typing import Any

from actors.model import BatchingRemoteModel
from protocols.messages import ChatMessage, Completion, CompletionRequest, RequestMeta


class _Method:
    def __init__(self, call: Any) -> None:
        self.remote = call


class FakeHandle:
    """Stands in for a model actor handle; ``complete_many.remote`` is awaitable and records each call."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls: list[list[str | None]] = []
        self.complete_many = _Method(self._complete_many)

    async def _complete_many(self, requests: list[CompletionRequest]) -> list[Completion]:
        self.calls.append([r.meta.problem_id for r in requests])
        await asyncio.sleep(self.delay_s)
        return [Completion(model="m", text=f"{r.meta.problem_id}/{r.sample_index}", source="fake") for r in requests]


def _request(problem: str, sample: int) -> CompletionRequest:
    return CompletionRequest(
        model="m",
        messages=(ChatMessage(role="user", content="q"),),
        sample_index=sample,
        meta=RequestMeta(problem_id=problem),
    )


async def _turn(model: BatchingRemoteModel) -> list[str]:
    replies = await asyncio.gather(*(model.complete(_request(p, i)) for p in ("a", "b") for i in range(3)))
    return [r.text for r in replies if isinstance(r, Completion)]


async def test_while_replies_are_immediate_problems_share_a_call() -> None:
    handle = FakeHandle(delay_s=0.0)
    model = BatchingRemoteModel(handle, "m")
    for _ in range(60):  # the slowest recent round trip decays below COUPLE_BELOW_S
        await model.complete(_request("warm", 0))
    handle.calls.clear()
    assert await _turn(model) == ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]
    assert handle.calls == [["a", "a", "a", "b", "b", "b"]]


async def test_when_replies_take_time_each_problem_gets_its_own_call() -> None:
    # One call for both would make problem a wait for b's slowest sample.
    handle = FakeHandle(delay_s=BatchingRemoteModel.COUPLE_BELOW_S * 2)
    model = BatchingRemoteModel(handle, "m")
    await model.complete(_request("warm", 0))
    handle.calls.clear()
    assert await _turn(model) == ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]
    assert sorted(handle.calls) == [["a", "a", "a"], ["b", "b", "b"]]


async def test_a_caller_that_knows_replies_are_immediate_shares_calls_from_the_start() -> None:
    handle = FakeHandle(delay_s=0.0)
    assert await _turn(BatchingRemoteModel(handle, "m", immediate=True)) == ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]
    assert handle.calls == [["a", "a", "a", "b", "b", "b"]]
