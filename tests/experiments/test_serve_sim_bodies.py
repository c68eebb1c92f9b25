"""serve-sim's parsed-body cache: a resent body is still a fresh sample, its errors still count, the budget holds."""

from __future__ import annotations

import orjson

from experiments.serve.app import SimServer
from experiments.serve.bodies import BodyCache
from experiments.serve.exchange import Request
from experiments.serve.lookup import ProblemLookup
from tests.experiments.serve_sim_helpers import ONE, PROBLEMS, recorder


def _post(body: object, role: str | None = None) -> Request:
    headers = {"x-slmsim-role": role} if role is not None else {}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Request("POST", "/v1/chat/completions", headers, raw)


async def test_a_resent_body_is_a_fresh_sample_and_its_errors_count_every_time() -> None:
    model = recorder()
    server = SimServer({"sim-a": model}, lookup=ProblemLookup(PROBLEMS))
    body = {"model": "sim-a", "messages": [{"role": "user", "content": ONE}], "temperature": 0.7}
    replies = [orjson.loads((await server.handle(_post(body))).body) for _ in range(3)]
    texts = [r["choices"][0]["message"]["content"] for r in replies]
    assert len(set(texts)) == 3  # the cache holds the reading of the body, never a sample
    assert [r.sample_index for r in model.requests] == [0, 1, 2]
    assert len(server._bodies) == 1
    bad = {**body, "temperature": 5}
    for _ in range(2):
        assert (await server.handle(_post(bad))).status == 400
    assert (await server.handle(_post(body, role="nonsense"))).status == 400  # the role header is part of the key
    assert server.stats["bad_request"] == 3 and server.stats["recognised"] == 3
    assert len(server._bodies) == 1  # refused bodies are never cached


def test_the_cache_keeps_at_most_its_budget_of_body_bytes_and_skips_long_bodies() -> None:
    cache: BodyCache[int] = BodyCache(budget=100, longest=60)
    for i in range(10):
        cache.put((bytes([i]) * 30, True, None), i)
    assert len(cache) == 3  # 3 x 30 bytes fit in 100
    assert cache.get((bytes([9]) * 30, True, None)) == 9
    assert cache.get((bytes([0]) * 30, True, None)) is None  # the oldest went first
    assert cache.get((bytes([9]) * 30, False, None)) is None  # another endpoint is another entry
    cache.put((b"x" * 61, True, None), 99)
    assert cache.get((b"x" * 61, True, None)) is None and len(cache) == 3
