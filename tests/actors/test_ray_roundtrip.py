"""Protocol messages cross Ray actor boundaries intact (model actor and runner actor)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.backends.fake import FakeBackend
from actors.model import ModelActor, RemoteModel
from protocols.config import ModelSpec
from protocols.messages import (
    ChatMessage,
    Completion,
    CompletionRequest,
    Failure,
    Problem,
    RequestMeta,
)

pytestmark = pytest.mark.ray

PROBLEM = Problem(
    id="test/algebra/1.json",
    benchmark="math500",
    question="What is $\\frac{1}{2}+\\frac{1}{3}$?",
    reference="\\frac{5}{6}",
    answer_format="boxed",
    domain="Algebra",
    level=2,
    metadata={"solution": "...", "nested": {"a": [1, 2]}},
)


def echo(request: CompletionRequest) -> str | Failure:
    if request.meta.role == "verifier":
        return Failure(error="rate_limit", message="429 from fake", retryable=True, retry_after_s=1.5)
    return request.model_dump_json()


async def test_request_and_replies_round_trip_through_model_actor(ray_session: None) -> None:
    import ray

    spec = ModelSpec(name="fake-model", backend="sim", max_in_flight=4)
    handle: Any = ray.remote(ModelActor).options(num_cpus=0).remote(spec, 0, None, None, FakeBackend(echo))
    model = RemoteModel(handle, "fake-model")
    request = CompletionRequest(
        model="fake-model",
        messages=(ChatMessage(role="system", content="s"), ChatMessage(role="user", content="ünïcode ✓")),
        temperature=0.3,
        max_tokens=64,
        stop=("\n\n",),
        seed=7,
        sample_index=2,
        meta=RequestMeta(problem=PROBLEM, role="aggregator", candidates=("1", None, "\\frac56"), step=3),
    )
    replies = await asyncio.gather(*(model.complete(request) for _ in range(8)))
    for reply in replies:
        assert isinstance(reply, Completion)
        assert CompletionRequest.model_validate_json(reply.text) == request
    failure = await model.complete(request.model_copy(update={"meta": RequestMeta(role="verifier")}))
    assert isinstance(failure, Failure)
    assert failure.retry_after_s == 1.5 and failure.retryable
    stats = await handle.stats.remote()
    peak = stats.pop("peak_in_flight")
    assert stats == {"model": "fake-model", "served": 9, "failed": 1}
    assert 1 <= peak <= spec.max_in_flight, peak  # the actor's gate bounds the requests open at once
    ray.kill(handle)
