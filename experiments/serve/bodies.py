"""The parsed-body cache of serve-sim: an exact request body -> what the server read from it.

Clients resend identical bodies (self-consistency's k samples, agents' retries, a benchmark's
rounds), and reading one (JSON, the wire checks, the conversation's problem and role) was a
third of the handler's cost outside the simulator. The cache is bounded by the bytes of the
bodies it holds (each is held about three times over: the body, its text, its messages).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, NamedTuple, TypeVar

from experiments.serve.wire import WireRequest
from protocols.messages import ChatMessage, RequestMeta

V = TypeVar("V")
BUDGET_BYTES = 16 * 1024 * 1024
LONGEST = 64 * 1024
"""Bodies longer than this are never cached (a few would fill the budget)."""


class Parsed(NamedTuple):
    """A request as the server read it (immutable, so one cached copy serves every resend)."""

    wire: WireRequest
    card: str
    meta: RequestMeta
    messages: tuple[ChatMessage, ...]
    prompt_key: int
    """``digest(card, chat, text)``: the key of the per-prompt sample counter."""
    prompt_tokens: int
    """The conversation's tokens at 4 characters a token (``features.tokens_of``)."""
    wanted: str | None
    """The answer format the prompt asks for (``features.wanted_format``)."""
    headers: dict[str, str]
    """The reply's ``x-slmsim-*`` headers (source, problem, role); copied per reply, never changed."""


class BodyCache(Generic[V]):
    """Least recently used entries keyed by (body, endpoint, role header), at most ``budget`` body bytes."""

    def __init__(self, budget: int = BUDGET_BYTES, longest: int = LONGEST) -> None:
        self._entries: OrderedDict[tuple[bytes, bool, str | None], V] = OrderedDict()
        self._bytes = 0
        self.budget = budget
        self.longest = longest

    def get(self, key: tuple[bytes, bool, str | None]) -> V | None:
        if len(key[0]) > self.longest:
            return None
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: tuple[bytes, bool, str | None], value: V) -> None:
        if len(key[0]) > self.longest or key in self._entries:
            return
        self._entries[key] = value
        self._bytes += len(key[0])
        while self._bytes > self.budget:
            old, _ = self._entries.popitem(last=False)
            self._bytes -= len(old[0])

    def __len__(self) -> int:
        return len(self._entries)
