"""A stand-in for a Ray streaming actor method, driven by an in-process async generator.

``StreamMethod(gen).options(num_returns="streaming").remote(items)`` returns what Ray's
``ObjectRefGenerator`` is to a caller: an async iterator of awaitables, each one yield of
``gen(items)``. Each call's items are recorded, so tests can see how requests were grouped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any


class _Ref:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return asyncio.sleep(0, self.value).__await__()


class StreamMethod:
    def __init__(self, gen: Callable[[list[Any]], AsyncIterator[Any]]) -> None:
        self.gen = gen
        self.calls: list[list[Any]] = []

    def options(self, **options: Any) -> StreamMethod:
        assert options == {"num_returns": "streaming"}
        return self

    def remote(self, items: list[Any]) -> AsyncIterator[_Ref]:
        self.calls.append(list(items))

        async def refs() -> AsyncIterator[_Ref]:
            async for group in self.gen(items):
                yield _Ref(group)

        return refs()
