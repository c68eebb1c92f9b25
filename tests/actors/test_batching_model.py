"""BatchingRemoteModel: one actor call a turn; replies streamed back as each is done unless all are immediate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from actors.coalesce import completed_groups
from actors.model import WIRE as MODEL_WIRE
from actors.model import BatchingRemoteModel
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, RequestMeta
from tests.actors.stream_fakes import StreamMethod


class _Method:
    def __init__(self, call: Any) -> None:
        self.remote = call


class FakeHandle:
    """Stands in for a model actor handle; ``complete_many.remote`` is awaitable and records each call."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls: list[list[str | None]] = []
        self.complete_many = _Method(self._complete_many)
        self.complete_stream = StreamMethod(self._complete_stream, MODEL_WIRE)
        self.held: dict[str | None, asyncio.Event] = {}
        self.die: BaseException | None = None

    async def _reply(self, r: CompletionRequest) -> Completion:
        if r.meta.problem_id in self.held:
            await self.held[r.meta.problem_id].wait()
        return Completion(model="m", text=f"{r.meta.problem_id}/{r.sample_index}", source="fake")

    async def _complete_stream(self, requests: list[CompletionRequest]) -> AsyncIterator[list[tuple[int, Completion]]]:
        if self.die is not None:
            raise self.die
        async for group in completed_groups([self._reply(r) for r in requests], fraction=0.0):
            yield group

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


async def test_problems_share_one_streaming_call_and_none_waits_for_another() -> None:
    # One call for both problems, yet a's replies come back while b's are still held back.
    handle = FakeHandle(delay_s=0.0)
    model = BatchingRemoteModel(handle, "m")
    handle.held["b"] = asyncio.Event()
    a = asyncio.gather(*(model.complete(_request("a", i)) for i in range(3)))
    b = asyncio.gather(*(model.complete(_request("b", i)) for i in range(3)))
    assert [r.text for r in await a if isinstance(r, Completion)] == ["a/0", "a/1", "a/2"]
    assert not b.done()
    handle.held["b"].set()
    assert [r.text for r in await b if isinstance(r, Completion)] == ["b/0", "b/1", "b/2"]
    assert [[r.meta.problem_id for r in c] for c in handle.complete_stream.calls] == [["a", "a", "a", "b", "b", "b"]]
    assert handle.calls == [], "no plain calls when replies take time"


async def test_a_dead_actor_fails_each_waiting_request_transiently() -> None:
    from ray.exceptions import RayActorError

    handle = FakeHandle(delay_s=0.0)
    handle.die = RayActorError()
    model = BatchingRemoteModel(handle, "m")
    replies = await asyncio.gather(*(model.complete(_request("a", i)) for i in range(2)))
    assert all(isinstance(r, Failure) and r.error == "actor" and r.retryable and r.model == "m" for r in replies)


async def test_a_caller_that_knows_replies_are_immediate_shares_calls_from_the_start() -> None:
    handle = FakeHandle(delay_s=0.0)
    assert await _turn(BatchingRemoteModel(handle, "m", immediate=True)) == ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]
    assert handle.calls == [["a", "a", "a", "b", "b", "b"]]
