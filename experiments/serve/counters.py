"""The per-(model, prompt) sample counter and the request tallies, in one process or shared by workers.

Without a request ``seed``, the n-th identical request draws sample index n (see
``app``). With ``--workers N`` the kernel spreads connections over N processes, so the
counter must be one for all of them, or two workers would hand out the same sample:
``SharedCounters`` is an open-addressing table of (key, count) in memory shared across
``fork``, taken under one lock (a critical section of microseconds). It therefore keeps
the single-process semantics: successive identical requests draw successive samples,
whichever worker answers, and a restarted server replays the same sequence for the same
order of requests. Both tables forget: ``LocalCounters`` its least recently used prompts
past ``entries``; ``SharedCounters`` clears itself when it is ``MAX_LOAD`` full (about
700k distinct prompts by default), after which prompts count again from 0.

``SharedTally`` gives each worker a row of request counts that ``/v1/slmsim/stats`` sums.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

MAX_LOAD = 0.7


class PromptCounters(Protocol):
    """Hands out consecutive sample indices per prompt key."""

    def take(self, key: int, n: int) -> int:
        """The first of ``n`` consecutive indices for ``key`` (the count so far), advancing it by ``n``."""
        ...


class LocalCounters:
    """The counters of a single-process server: a dict with least-recently-used eviction."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._counts: OrderedDict[int, int] = OrderedDict()

    def take(self, key: int, n: int) -> int:
        start = self._counts.pop(key, 0)
        self._counts[key] = start + n
        if len(self._counts) > self.entries:
            self._counts.popitem(last=False)
        return start


class SharedCounters:
    """Counters in shared memory, one lock for all workers (create before forking them)."""

    def __init__(self, slots: int = 1 << 20) -> None:
        self.slots = slots
        self._table: Any = mp.RawArray(ctypes.c_uint64, 2 * slots)  # key, count, key, count, ...
        self._used: Any = mp.RawValue(ctypes.c_uint64, 0)
        self._lock = mp.Lock()

    def take(self, key: int, n: int) -> int:
        key = (key & 0xFFFF_FFFF_FFFF_FFFF) | 1  # 0 marks an empty slot
        table, slots = self._table, self.slots
        with self._lock:
            slot = key % slots
            while True:
                held = table[2 * slot]
                if held == key:
                    start = int(table[2 * slot + 1])
                    table[2 * slot + 1] = start + n
                    return start
                if held == 0:
                    break
                slot = (slot + 1) % slots
            if self._used.value >= MAX_LOAD * slots:  # full: forget everything rather than probe forever
                ctypes.memset(self._table, 0, ctypes.sizeof(self._table))
                self._used.value = 0
                slot = key % slots
            table[2 * slot] = key
            table[2 * slot + 1] = n
            self._used.value += 1
            return 0


class SharedTally:
    """Per-worker rows of named request counts in shared memory; ``totals`` sums the rows."""

    def __init__(self, names: Iterable[str], workers: int) -> None:
        self.names = tuple(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.workers = workers
        self._rows: Any = mp.RawArray(ctypes.c_int64, len(self.names) * workers)

    def publish(self, worker: int, counts: Mapping[str, int]) -> None:
        """Write one worker's current counts (names not in the table are ignored)."""
        base = worker * len(self.names)
        rows, index = self._rows, self.index
        for name, value in counts.items():
            at = index.get(name)
            if at is not None:
                rows[base + at] = value

    def totals(self) -> dict[str, int]:
        width = len(self.names)
        return {name: sum(self._rows[w * width + i] for w in range(self.workers)) for i, name in enumerate(self.names)}
