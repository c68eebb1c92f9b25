"""Symbolic equivalence with math-verify, run in a worker process with a hard timeout.

math-verify's own timeouts use ``signal.alarm``, which only works in a main thread;
a process-pool worker runs its tasks in its main thread, so the signal timeouts work
there, and the pool is killed and replaced if a check still overruns (pure C loops,
e.g. a huge integer power, never see the signal).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal, NamedTuple

Verdict = Literal["equal", "different", "unparsable", "timeout"]


class SymbolicResult(NamedTuple):
    """The outcome of one symbolic check."""

    verdict: Verdict
    detail: str = ""


def symbolic_check(gold: str, pred: str, timeout_s: int = 3, use_signals: bool = True) -> SymbolicResult:
    """Compare two normalised LaTeX answers with math-verify (blocking; call in a worker).

    ``use_signals`` must be False outside a main thread, which also disables math-verify's timeout.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    from math_verify.errors import TimeoutException

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    limit = timeout_s if use_signals else None
    try:
        parsed_gold = parse(f"${gold}$", extraction_config=config, parsing_timeout=limit)  # type: ignore[arg-type]
        parsed_pred = parse(f"${pred}$", extraction_config=config, parsing_timeout=limit)  # type: ignore[arg-type]
        if not parsed_gold or not parsed_pred:
            side = "reference" if not parsed_gold else "answer"
            return SymbolicResult("unparsable", f"could not parse the {side}")
        if verify(parsed_gold, parsed_pred, timeout_seconds=limit):  # type: ignore[arg-type]
            return SymbolicResult("equal")
        return SymbolicResult("different")
    except TimeoutException:
        return SymbolicResult("timeout", "math-verify timed out")
    except Exception as exc:  # sympy raises a zoo of types on odd input; all mean "cannot decide"
        return SymbolicResult("unparsable", f"{type(exc).__name__}: {exc}"[:200])


def _warm_up() -> None:
    # Pay the sympy/math-verify import once per worker, before the first real check.
    symbolic_check("1", "1")


class SymbolicChecker:
    """A small process pool for symbolic checks, with a result cache and a hard timeout.

    Args:
        workers: processes in the pool (default: up to 2, the cores we can count on).
        timeout_s: seconds allowed per check; an overrun is a ``timeout`` verdict, never a hang.
        cache_size: how many (gold, pred) verdicts to remember.
    """

    def __init__(self, workers: int | None = None, timeout_s: float = 3.0, cache_size: int = 65536) -> None:
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self.timeout_s = timeout_s
        self._cache: OrderedDict[tuple[str, str], SymbolicResult] = OrderedDict()
        self._cache_size = cache_size
        self._pool: ProcessPoolExecutor | None = None
        self._warm = False
        self.checks = 0
        self.timeouts = 0

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the parent may be a threaded Ray worker, where fork is unsafe.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_warm_up)
        return self._pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A stuck worker ignores shutdown(); terminate it so the next check gets a fresh pool.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, gold: str, pred: str) -> SymbolicResult:
        """The symbolic verdict on (gold, pred), from the cache or a worker."""
        key = (gold, pred)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        self.checks += 1
        result = await self._run(gold, pred)
        if result.verdict == "timeout":
            self.timeouts += 1
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    async def _run(self, gold: str, pred: str) -> SymbolicResult:
        loop = asyncio.get_running_loop()
        signal_limit = max(1, int(self.timeout_s))
        # Until a worker has answered once, allow for its start-up (spawn + sympy import).
        bound = self.timeout_s + 1.0 if self._warm else self.timeout_s + 60.0
        for _attempt in range(2):
            future = loop.run_in_executor(self._get_pool(), symbolic_check, gold, pred, signal_limit)
            try:
                result = await asyncio.wait_for(future, bound)
            except TimeoutError:
                self._kill_pool()
                return SymbolicResult("timeout", f"no verdict within {bound:.0f}s; worker replaced")
            except BrokenProcessPool:
                # Another check's timeout killed this pool under us: retry once on a fresh one.
                if self._pool is not None and getattr(self._pool, "_broken", False):
                    self._pool = None
                continue
            self._warm = True
            return result
        return SymbolicResult("timeout", "worker pool broke twice")

    def close(self) -> None:
        """Stop the worker processes."""
        self._kill_pool()
