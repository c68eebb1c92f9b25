"""BatchingRemoteModel, immediate replies: one plain actor call a turn, each request gets its own reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.model import BatchingRemoteModel
from protocols.messages import ChatMessage, Completion, CompletionRequest


def _request(i: int) -> CompletionRequest:
    return CompletionRequest(model="m", messages=(ChatMessage(role="user", content=f"q{i}"),), seed=i)


class _Method:
    def __init__(self, fn: Any) -> None:
        self.remote = fn


class FakeHandle:
    """Stands in for a Ray actor handle: ``complete_many.remote(requests)`` is awaitable."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.batches: list[list[str]] = []
        self.error = error
        self.complete_many = _Method(self._many)

    async def _many(self, requests: list[CompletionRequest]) -> list[Completion]:
        self.batches.append([r.messages[0].content for r in requests])
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return [Completion(model="m", text=f"a-{r.messages[0].content}", source="sim") for r in requests]


async def test_concurrent_requests_share_one_call_and_get_their_own_replies() -> None:
    handle = FakeHandle()
    model = BatchingRemoteModel(handle, "m", immediate=True)
    replies = await asyncio.gather(*(model.complete(_request(i)) for i in range(5)))
    assert handle.batches == [["q0", "q1", "q2", "q3", "q4"]]
    assert [r.text for r in replies if isinstance(r, Completion)] == [f"a-q{i}" for i in range(5)]
    again = await model.complete(_request(9))  # a later turn: its own call
    assert isinstance(again, Completion) and again.text == "a-q9" and len(handle.batches) == 2


async def test_a_large_turn_is_split_into_bounded_batches() -> None:
    handle = FakeHandle()
    model = BatchingRemoteModel(handle, "m", immediate=True)
    await asyncio.gather(*(model.complete(_request(i)) for i in range(BatchingRemoteModel.MAX_BATCH + 3)))
    assert [len(b) for b in handle.batches] == [BatchingRemoteModel.MAX_BATCH, 3]


async def test_a_bug_raises_in_every_caller_and_a_cancelled_caller_does_not_break_the_batch() -> None:
    model = BatchingRemoteModel(FakeHandle(error=RuntimeError("boom")), "m", immediate=True)
    results = await asyncio.gather(*(model.complete(_request(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    ok = BatchingRemoteModel(FakeHandle(), "m", immediate=True)
    first = asyncio.ensure_future(ok.complete(_request(0)))
    second = asyncio.ensure_future(ok.complete(_request(1)))
    await asyncio.sleep(0)
    first.cancel()
    reply = await second
    assert isinstance(reply, Completion) and reply.text == "a-q1"
    with pytest.raises(asyncio.CancelledError):
        await first


def test_it_pickles_without_its_pending_state() -> None:
    import pickle

    model = BatchingRemoteModel("handle", "m")
    model._batcher = model._make_batcher()  # its pending requests and open calls live here
    copy = pickle.loads(pickle.dumps(model))
    assert copy.handle == "handle" and copy.name == "m" and copy._batcher is None
