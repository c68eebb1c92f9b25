"""The model actor: one per model spec, async, a bounded number of requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from actors.backends.base import close_backend
from actors.coalesce import CallBatcher, JsonWire, StreamBatcher, TurnBatcher, packed_groups
from protocols.config import ModelSpec, StoreSpec
from protocols.interfaces import Backend
from protocols.messages import Completion, CompletionRequest, Failure, ModelReply

WIRE = JsonWire(CompletionRequest, ModelReply)
"""How ``ModelActor.complete_stream``'s requests and replies travel (``actors.coalesce``)."""


class ModelActor:
    """Serves one model's completions through its backend chain.

    A plain class (testable in-process); ``experiments.runtime.spawn.spawn_model`` makes it remote. The
    backend chain is built lazily inside the actor's own process and event loop,
    because HTTP sessions must belong to the loop that uses them.
    """

    def __init__(
        self,
        spec: ModelSpec,
        seed: int = 0,
        store: StoreSpec | None = None,
        store_dir: str | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.store = store or StoreSpec()
        self.store_dir = Path(store_dir) if store_dir else None
        self._backend = backend
        self._gate: asyncio.Semaphore | None = None
        self._served = 0
        self._failed = 0
        self._open = 0
        self._peak = 0

    def _ensure(self) -> tuple[Backend, asyncio.Semaphore]:
        if self._backend is None:
            from actors.backends.factory import build_backend

            self._backend = build_backend(self.spec, self.seed, self.store, self.store_dir)
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.spec.max_in_flight)
        return self._backend, self._gate

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        """One completion, or a typed failure; never raises for model-side problems."""
        backend, gate = self._ensure()
        async with gate:
            self._open += 1
            self._peak = max(self._peak, self._open)
            try:
                reply = await backend.complete(request)
            except Exception as exc:  # a bug in a backend must not kill the actor
                reply = Failure(
                    error="internal",
                    message=f"{type(exc).__name__} in backend of {self.spec.name!r}: {exc}",
                    model=self.spec.name,
                )
            finally:
                self._open -= 1
        self._served += 1
        if isinstance(reply, Failure):
            self._failed += 1
        return reply

    async def complete_many(self, requests: list[CompletionRequest]) -> list[Completion | Failure]:
        """Several completions in one actor call (one Ray hop instead of ``len(requests)``)."""
        return list(await asyncio.gather(*(self.complete(r) for r in requests)))

    async def complete_stream(self, payload: bytes) -> AsyncIterator[bytes]:
        """Several completions in one streaming actor call: ``(position, reply)`` groups as they finish.

        One Ray hop for the lot, and no request waits for another; ``payload`` is the packed
        list of requests, each yield a packed group (``actors.coalesce``).
        """
        requests: list[CompletionRequest] = WIRE.load_items(payload)
        async for packed in packed_groups([self.complete(r) for r in requests], WIRE):
            yield packed

    async def stats(self) -> dict[str, Any]:
        """Counters for reports and benchmarks (``peak_in_flight``: most requests in the backend at once)."""
        return {"model": self.spec.name, "served": self._served, "failed": self._failed, "peak_in_flight": self._peak}

    async def aclose(self) -> None:
        """Release the backend's connections."""
        await close_backend(self._backend)


class RemoteModel:
    """The ``Model`` interface over a Ray actor handle (awaits the object ref, never ``ray.get``)."""

    def __init__(self, handle: Any, name: str) -> None:
        self.handle = handle
        self.name = name

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        try:
            return await self.handle.complete.remote(request)  # type: ignore[no-any-return]
        except Exception as exc:
            failure = actor_failure(exc, f"model actor {self.name!r}")
            if failure is None:
                raise
            return failure.model_copy(update={"model": self.name})

    async def stats(self) -> dict[str, Any]:
        """The actor's counters (``ModelActor.stats``)."""
        return await self.handle.stats.remote()  # type: ignore[no-any-return]


class BatchingRemoteModel(RemoteModel):
    """``RemoteModel`` that sends the requests made in one event-loop turn as one actor call.

    An orchestrator asks for its k samples (and other in-flight problems for theirs) all
    at once; each Ray call costs both processes CPU (task submission, (de)serialising,
    scheduling), so a batch of k costs about one call. Every request still gets its own
    reply; a dead actor (after Ray's restarts) fails each request of the batch the same way.

    The batch is a streaming call (``ModelActor.complete_stream``, ``actors.coalesce``): each
    reply comes back as soon as it is done, so problems sharing a call never wait for each
    other's samples, whatever the latency. A model whose replies are all immediate
    (``immediate``: the simulator at ``time_scale`` 0) takes one plain call a batch
    (``complete_many``), which saves the stream's report per group.
    """

    MAX_BATCH = 64
    """Requests a plain call (the immediate path) carries at most."""

    def __init__(self, handle: Any, name: str, immediate: bool = False) -> None:
        super().__init__(handle, name)
        self.immediate = immediate
        self._batcher: TurnBatcher[CompletionRequest, Completion | Failure] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"handle": self.handle, "name": self.name, "immediate": self.immediate, "_batcher": None}

    def _on_error(self, exc: BaseException) -> Failure | None:
        failure = actor_failure(exc, f"model actor {self.name!r}")
        return None if failure is None else failure.model_copy(update={"model": self.name})

    def _make_batcher(self) -> TurnBatcher[CompletionRequest, Completion | Failure]:
        handle = self.handle
        if self.immediate:
            return CallBatcher(lambda batch: handle.complete_many.remote(batch), self._on_error, self.MAX_BATCH)
        return StreamBatcher(
            lambda batch: handle.complete_stream.options(num_returns="streaming").remote(batch), self._on_error, WIRE
        )

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        if self._batcher is None:
            self._batcher = self._make_batcher()
        return await self._batcher.submit(request)


def actor_failure(exc: BaseException, who: str) -> Failure | None:
    """A transient ``Failure`` for a Ray error meaning the actor's process died, else None.

    Supervised actors are restarted and their in-flight calls re-submitted by Ray; this is
    what remains when that did not save the call (restart budget spent, node lost).
    """
    from ray.exceptions import ActorUnavailableError, RayActorError

    if isinstance(exc, BaseExceptionGroup):  # raised through a TaskGroup
        found = (actor_failure(inner, who) for inner in exc.exceptions)
        return next((f for f in found if f is not None), None)
    if not isinstance(exc, RayActorError | ActorUnavailableError):
        return None
    cause = " ".join(str(exc).split())[:300]
    return Failure(error="actor", message=f"{who} died: {type(exc).__name__}: {cause}", retryable=True)
