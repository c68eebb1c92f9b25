"""A stand-in for a Ray streaming actor method, driven by an in-process async generator.

``StreamMethod(gen).options(num_returns="streaming").remote(payload)`` returns what Ray's
``ObjectRefGenerator`` is to a caller: an async iterator of awaitables, each one yield of
``gen(items)`` as ``wire`` carries it, where ``items`` is what ``wire`` read from
``payload`` (as an actor's streaming method does it). Each call's items are recorded, so
tests can see how requests were grouped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from actors.coalesce import PICKLED, Wire


class _Ref:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return asyncio.sleep(0, self.value).__await__()


class StreamMethod:
    def __init__(self, gen: Callable[[list[Any]], AsyncIterator[Any]], wire: Wire = PICKLED) -> None:
        self.gen = gen
        self.wire = wire  # the actor method's own (``actors.runner.WIRE``, ``actors.model.WIRE``)
        self.calls: list[list[Any]] = []

    def options(self, **options: Any) -> StreamMethod:
        assert options == {"num_returns": "streaming"}
        return self

    def remote(self, payload: bytes) -> AsyncIterator[_Ref]:
        items = self.wire.load_items(payload)
        self.calls.append(list(items))

        async def refs() -> AsyncIterator[_Ref]:
            async for group in self.gen(items):
                yield _Ref(self.wire.dump_group(group))

        return refs()
