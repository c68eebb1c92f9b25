"""A stand-in for a Ray streaming actor method, driven by an in-process async generator.

``StreamMethod(gen).options(num_returns="streaming").remote(payload)`` returns what Ray's
``ObjectRefGenerator`` is to a caller: an async iterator of awaitables, each one yield of
``gen(items)``, packed, where ``items`` is ``unpack(payload)`` (as an actor's streaming method
does it). Each call's items are recorded, so tests can see how requests were grouped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from actors.coalesce import pack, unpack


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

    def remote(self, payload: bytes) -> AsyncIterator[_Ref]:
        items = unpack(payload)
        self.calls.append(list(items))

        async def refs() -> AsyncIterator[_Ref]:
            async for group in self.gen(items):
                yield _Ref(pack(group))

        return refs()
