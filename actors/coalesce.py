"""Many callers' requests to one actor as one streamed Ray call, each reply delivered as soon as it is done.

A Ray call costs each side about a millisecond of CPU (submission, scheduling,
serialising), as much as an HTTP request to a model server; one call per request caps a
2-core machine at a few hundred requests a second. Batching requests into one call that
returns a list would make every request of the batch wait for the slowest (a problem
waiting for another problem's samples). A *streaming* call does neither: the caller sends
the requests made in one event-loop turn together, and the actor (an async generator
method, Ray's ``num_returns="streaming"``) yields the replies that are done, in groups, as
they finish (``completed_groups``). Each yield is one report back (measured about as dear
as a whole call when it carries one reply, 0.15 ms a reply when it carries 16), so the
actor gathers what finishes within a short window that is a small fraction of the replies'
own age: a reply waits at most ``WINDOW_FRACTION`` of its latency (and ``MAX_WINDOW_S``).

Both directions travel as bytes made once (a ``Wire``): Ray serialises arguments and yields
with cloudpickle, whose Python-level hook runs for every pydantic message, and a streamed
round trip of requests and completions cost 0.15 ms an item that way against 0.085 ms as
bytes pickled with the C pickler (``pack``/``unpack``, micro-benchmark, both sides' CPU).
The runner's and the model actor's streams carry JSON by pydantic-core (``JsonWire``),
half the C pickler's cost again; other streams pickle, between this run's own actors,
which Ray already trusts with pickle.

The caller side is ``StreamBatcher`` (``CallBatcher`` for a plain call; both are a
``TurnBatcher``): ``await submit(item)`` returns that item's reply.
Nothing is lost when the actor dies: an error fails each waiting item (``on_error`` turns
it into a reply, e.g. a retryable ``Failure``, or it is raised to the caller), and an item
the stream never answered (Ray re-ran a generator after a restart and skipped the yields
already reported, which carried other items) is sent again in a fresh call (calls here are
idempotent, see ``experiments.runtime.spawn``).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

T = TypeVar("T")
R = TypeVar("R")

# 3% and 10 ms, not 1% and 5 ms: at 0.25 s and 256 in flight the larger groups cut the
# stack's CPU a request by a fifth (0.87-0.99 -> 0.60-0.77 ms) and raised its req/s (669-713
# -> 704-780), for a few ms of latency a hop (docs/cluster.md, session 22b).
WINDOW_FRACTION = 0.03
MAX_WINDOW_S = 0.01
RESENDS = 3
MAX_BATCH = 256
"""Items one call carries at most, unless a batcher is given another bound."""


async def completed_groups(
    calls: list[Awaitable[R]], fraction: float = WINDOW_FRACTION, max_window_s: float = MAX_WINDOW_S
) -> AsyncGenerator[list[tuple[int, R]], None]:
    """``(position, reply)`` of ``calls`` in groups, as they finish; a call's exception propagates.

    After the first of a group finishes, waits ``min(max_window_s, fraction * age)`` (age: time
    since the calls started) for more, so a burst of replies goes back as one yield while no
    reply waits more than a few percent of its own latency. Replies that are all immediate (a
    simulator at ``time_scale`` 0) go back in one group with no wait at all.
    """
    started = time.perf_counter()
    finished: list[int] = []  # positions done since the last yield, filled by done callbacks:
    wake = asyncio.Event()  # O(1) an item, where asyncio.wait re-arms every pending call each time

    def on_done(position: int) -> Callable[[asyncio.Future[R]], None]:
        def callback(_: asyncio.Future[R]) -> None:
            finished.append(position)
            wake.set()

        return callback

    tasks = [asyncio.ensure_future(call) for call in calls]
    for position, task in enumerate(tasks):
        task.add_done_callback(on_done(position))
    left = len(tasks)
    try:
        while left:
            await wake.wait()
            window = min(max_window_s, fraction * (time.perf_counter() - started))
            if window > 0 and len(finished) < left:
                await asyncio.sleep(window)
            wake.clear()
            group = sorted(finished)
            finished.clear()
            left -= len(group)
            yield [(position, tasks[position].result()) for position in group]
    finally:  # the caller went away (cancelled, actor shutting down): do not leave orphans running
        for task in tasks:
            task.cancel()


def pack(value: Any) -> bytes:
    """``value`` as the bytes a streaming call carries (see the module's docstring)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(payload: bytes) -> Any:
    """The value ``pack`` made ``payload`` from."""
    return pickle.loads(payload)


PICKLE_MARK = pickle.dumps(None, protocol=pickle.HIGHEST_PROTOCOL)[:1]
"""The first byte of every ``pack``ed payload (the PROTO opcode); JSON's is ``[``."""


class Wire:
    """How one kind of stream's items and reply groups travel: bytes, both ways.

    The default pickles (``pack``/``unpack``: any value). ``JsonWire`` serves the two hot
    streams, whose items and replies are the protocol's messages.
    """

    def dump_items(self, items: list[Any]) -> bytes:
        return pack(items)

    def load_items(self, payload: bytes) -> list[Any]:
        return unpack(payload)  # type: ignore[no-any-return]

    def dump_group(self, group: list[tuple[int, Any]]) -> bytes:
        return pack(group)

    def load_group(self, payload: bytes) -> list[tuple[int, Any]]:
        return unpack(payload)  # type: ignore[no-any-return]


PICKLED = Wire()


class JsonWire(Wire):
    """Items of type ``item`` and replies of type ``reply`` as JSON, by pydantic-core.

    Half the CPU of pickling the same messages, both sides together (C pickle goes
    through each pydantic model's Python ``__getstate__``/``__setstate__``; pydantic-core
    dumps in Rust and validates back): a round trip of a ``CompletionRequest`` 13 us
    against 24, a ``ProblemResult`` 13 against 27, a ``Completion`` 6 against 17
    (docs/cluster.md, session 23). What arrives is validated again, so both sides hold
    the same typed message, as ``results.jsonl`` round-trips it: in a ``dict[str, Any]``
    field a tuple arrives as a list and a non-finite float as None. A batch holding a
    value JSON cannot carry at all (an object in such a field) goes pickled instead.
    """

    def __init__(self, item: Any, reply: Any) -> None:
        self._items: TypeAdapter[list[Any]] = TypeAdapter(list[item])  # type: ignore[valid-type]
        self._groups: TypeAdapter[list[tuple[int, Any]]] = TypeAdapter(list[tuple[int, reply]])  # type: ignore[valid-type]

    @staticmethod
    def _dump(adapter: Any, value: Any) -> bytes:
        try:
            return adapter.dump_json(value)  # type: ignore[no-any-return]
        except PydanticSerializationError:
            return pack(value)

    @staticmethod
    def _load(adapter: Any, payload: bytes) -> Any:
        return unpack(payload) if payload[:1] == PICKLE_MARK else adapter.validate_json(payload)

    def dump_items(self, items: list[Any]) -> bytes:
        return self._dump(self._items, items)

    def load_items(self, payload: bytes) -> list[Any]:
        return self._load(self._items, payload)  # type: ignore[no-any-return]

    def dump_group(self, group: list[tuple[int, Any]]) -> bytes:
        return self._dump(self._groups, group)

    def load_group(self, payload: bytes) -> list[tuple[int, Any]]:
        return self._load(self._groups, payload)  # type: ignore[no-any-return]


async def packed_groups(calls: list[Awaitable[R]], wire: Wire = PICKLED) -> AsyncIterator[bytes]:
    """``completed_groups(calls)``, each group as ``wire`` carries it: what an actor's streaming method yields."""
    async for group in completed_groups(calls):
        yield wire.dump_group(group)


class TurnBatcher(Generic[T, R]):
    """Gathers the items submitted in one event-loop turn into batches (at most ``max_batch``
    each) for ``_send``; each caller awaits its own reply.

    ``on_error(exc)`` maps an error of a batch's call to the reply every waiting item gets,
    or None to raise ``exc`` in each. Subclasses say how a batch travels.
    """

    def __init__(self, on_error: Callable[[BaseException], R | None], max_batch: int = MAX_BATCH) -> None:
        self.on_error = on_error
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self.calls = 0
        """Actor calls made (for tests and benchmarks)."""

    def sending(self) -> list[asyncio.Task[None]]:
        """The calls still open."""
        return list(self._sending)

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            self._spawn(self._send(pending[start : start + self.max_batch]))

    def _spawn(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(send)
        self._sending.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._sending.discard)

    def _fail(self, batch: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
        """Every still-waiting item of ``batch`` gets ``on_error(exc)``, or ``exc`` raised."""
        mapped = self.on_error(exc)
        for _, future in batch:
            if future.done():
                continue
            if mapped is None:
                future.set_exception(exc)
            else:
                future.set_result(mapped)

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        raise NotImplementedError


class CallBatcher(TurnBatcher[T, R]):
    """A batch as one plain actor call: ``call(items)`` returns an awaitable of the replies, in order.

    For replies that are all immediate, where a stream's report per group would be pure cost.
    """

    def __init__(
        self,
        call: Callable[[list[T]], Awaitable[list[R]]],
        on_error: Callable[[BaseException], R | None],
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(on_error, max_batch)
        self.call = call

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.calls += 1
        try:
            replies = await self.call([item for item, _ in batch])
        except Exception as exc:
            self._fail(batch, exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                future.set_result(reply)


class StreamBatcher(TurnBatcher[T, R]):
    """A batch as one streaming call; each reply is delivered as soon as the actor yields it.

    ``start(payload)`` begins the call on ``pack(items)`` and returns Ray's ``ObjectRefGenerator``
    (an async iterator of object refs, each a packed list of ``(position, reply)``).
    """

    def __init__(
        self, start: Callable[[bytes], Any], on_error: Callable[[BaseException], R | None], wire: Wire = PICKLED
    ) -> None:
        super().__init__(on_error)
        self.start = start
        self.wire = wire
        self.groups = 0
        """Groups the calls' streams yielded (for benchmarks: how many reports a reply shared)."""

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]], resends: int = RESENDS) -> None:
        self.calls += 1
        try:
            async for ref in self.start(self.wire.dump_items([item for item, _ in batch])):
                self.groups += 1
                for position, reply in self.wire.load_group(await ref):
                    future = batch[position][1]
                    if not future.done():  # cancelled by its caller, or answered by an earlier run
                        future.set_result(reply)
        except Exception as exc:
            self._fail(batch, exc)
            return
        missing = [(item, future) for item, future in batch if not future.done()]
        if missing and resends > 0:
            self._spawn(self._send(missing, resends - 1))
        elif missing:
            error = RuntimeError(f"a streaming actor call ended {RESENDS + 1} times without answering an item")
            for _, future in missing:
                future.set_exception(error)
