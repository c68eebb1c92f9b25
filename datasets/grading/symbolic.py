"""Symbolic equivalence with math-verify, run in worker processes with a hard timeout.

Timeouts need signals, which only work in a main thread. So each check runs in the main
thread of a worker process (``datasets/grading/worker.py``) under a CPU-time budget. A worker
that still overruns (pure C loops, e.g. a huge integer power, never see the signal) is
killed and replaced. The workers are plain
``python`` subprocesses rather than a multiprocessing pool, so they never re-import
the caller's ``__main__`` and are safe to start inside threaded Ray workers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

Verdict = Literal["equal", "different", "unparsable", "timeout"]
_REPO = Path(__file__).resolve().parents[2]
_WORKER = Path(__file__).resolve().with_name("worker.py")


class SymbolicResult(NamedTuple):
    """The outcome of one symbolic check."""

    verdict: Verdict
    detail: str = ""


def symbolic_check(gold: str, pred: str, timeout_s: float = 3, use_signals: bool = True) -> SymbolicResult:
    """Compare two normalised LaTeX answers with math-verify (blocking).

    The budget is CPU time (``ITIMER_PROF``), not wall time, so a busy machine does not turn
    ordinary checks into timeouts. Signals need the main thread: with ``use_signals=False``
    (any other thread) the check runs without a budget.
    """
    if not use_signals:
        return _math_verify(gold, pred)
    fired = done = False

    def on_budget_spent(signum: int, frame: object) -> None:
        nonlocal fired
        if done:  # a late tick while cleaning up: nothing left to interrupt
            return
        fired = True
        raise TimeoutException("symbolic check used its CPU budget")

    from math_verify.errors import TimeoutException

    previous = signal.signal(signal.SIGPROF, on_budget_spent)
    # Repeat after the budget is spent: math-verify swallows the first exception and goes on to
    # its next step, which must be cut short too.
    signal.setitimer(signal.ITIMER_PROF, timeout_s, 0.05)
    try:
        result = _math_verify(gold, pred)
        done = True
    except TimeoutException:
        fired = True
        result = SymbolicResult("timeout")
    finally:
        done = True
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    # math-verify catches the exception itself and answers "nothing parsed" or False; the flag
    # tells a spent budget from a verdict.
    if fired:
        return SymbolicResult("timeout", f"no verdict within {timeout_s:g}s of CPU")
    return result


def _math_verify(gold: str, pred: str) -> SymbolicResult:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    from math_verify.errors import TimeoutException

    # It warns that its own timeouts are off; symbolic_check supplies the budget instead.
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    try:
        # math-verify's own timeouts (signal.alarm, wall time) are off: symbolic_check sets the budget.
        parsed_gold = parse(f"${gold}$", extraction_config=config, parsing_timeout=None)  # type: ignore[arg-type]
        parsed_pred = parse(f"${pred}$", extraction_config=config, parsing_timeout=None)  # type: ignore[arg-type]
        if not parsed_gold or not parsed_pred:
            side = "reference" if not parsed_gold else "answer"
            return SymbolicResult("unparsable", f"could not parse the {side}")
        # math-verify is asymmetric in places (an interval gold accepts "x > 2", not the reverse);
        # equivalence is symmetric, so either direction proves it.
        if verify(parsed_gold, parsed_pred, timeout_seconds=None) or verify(  # type: ignore[arg-type]
            parsed_pred,
            parsed_gold,
            timeout_seconds=None,  # type: ignore[arg-type]
        ):
            return SymbolicResult("equal")
        return SymbolicResult("different")
    except TimeoutException:
        raise
    except Exception as exc:  # sympy raises a zoo of types on odd input; all mean "cannot decide"
        return SymbolicResult("unparsable", f"{type(exc).__name__}: {exc}"[:200])


class _Worker:
    """One worker subprocess; used by one thread at a time."""

    def __init__(self, startup_s: float) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(_WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
            cwd=str(_REPO),
        )
        if self._readline(startup_s) != "ready":
            self.kill()
            raise RuntimeError("symbolic worker did not start")

    def _readline(self, timeout_s: float) -> str | None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.process.stdout.readline()
        return line.strip() if line else None

    def check(self, gold: str, pred: str, timeout_s: float) -> SymbolicResult | None:
        """The verdict, or None if the worker overran ``timeout_s`` or died (it is then unusable)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"gold": gold, "pred": pred, "timeout": timeout_s}))
            self.process.stdin.write("\n")
            self.process.stdin.flush()
        except OSError:
            return None
        # The worker's budget is CPU time; this wall-clock bound is generous so that only a worker stuck
        # where no signal reaches it (a C loop, a stopped process) hits it, even on a busy machine.
        line = self._readline(4 * timeout_s + 5.0)
        if not line:
            return None
        reply = json.loads(line)
        return SymbolicResult(reply["verdict"], reply["detail"])

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


GROW_AFTER_S = 0.25
"""How long a check waits for a busy worker before the checker starts another (up to ``workers``)."""


def _spare_cpu() -> bool:
    """True if the machine's 1-minute load average is below its core count."""
    try:
        return os.getloadavg()[0] < (os.cpu_count() or 1)
    except OSError:
        return True


class SymbolicChecker:
    """Worker processes for symbolic checks, with a result cache and a hard timeout per check.

    Args:
        workers: worker processes at most (default: up to 2, the cores we can count on); the
            first starts on first use, the others only when checks queue up (``_take``).
        timeout_s: seconds allowed per check; an overrun is a ``timeout`` verdict, never a hang.
        cache_size: how many (gold, pred) verdicts to remember.
        startup_s: seconds a new worker may take to import sympy and math-verify.
    """

    def __init__(
        self, workers: int | None = None, timeout_s: float = 3.0, cache_size: int = 65536, startup_s: float = 60.0
    ) -> None:
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self.timeout_s = timeout_s
        self.startup_s = startup_s
        self._cache: OrderedDict[tuple[str, str], SymbolicResult] = OrderedDict()
        self._cache_size = cache_size
        # Threads, not the event loop, wait on the pipes; a thread-safe queue hands out idle workers.
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="symbolic")
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._unstarted = self.workers  # slots without a live worker; one starts on first use
        self._starting = 0
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self.checks = 0
        self.timeouts = 0

    def _take(self) -> _Worker | None:
        """An idle worker, or None: start one in a free slot.

        The first worker starts on first use; another only once a check has waited
        ``GROW_AFTER_S`` for a busy one and the machine has a core to spare (load average
        below the core count). A worker costs ~1.7 s of CPU to start (sympy and
        math-verify imports) and every runner process has its own checker: starting all
        slots at once cost a simulated run more CPU than its checks (docs/cluster.md), and
        on a saturated machine another worker only competes for the same cores.
        """
        while True:
            with self._lock:
                if self._unstarted == self.workers:
                    self._unstarted -= 1
                    return None
            try:
                return self._idle.get(timeout=GROW_AFTER_S)
            except queue.Empty:
                with self._lock:  # not while one is starting: a check waiting on that start is no backlog
                    if self._unstarted > 0 and self._starting == 0 and _spare_cpu():
                        self._unstarted -= 1
                        return None

    def _check_blocking(self, gold: str, pred: str) -> SymbolicResult:
        worker = self._take()
        try:
            if worker is None or worker.process.poll() is not None:
                worker = None
                with self._lock:
                    self._starting += 1
                try:
                    worker = _Worker(self.startup_s)
                finally:
                    with self._lock:
                        self._starting -= 1
                with self._lock:
                    self._live.add(worker)
            result = worker.check(gold, pred, self.timeout_s)
            if result is None:
                with self._lock:
                    self._live.discard(worker)
                worker.kill()
                worker = None
                return SymbolicResult("timeout", f"no verdict within {self.timeout_s:g}s; worker replaced")
            return result
        finally:
            if worker is None:
                with self._lock:
                    self._unstarted += 1  # its slot is free again; the next check that needs it starts one
            else:
                self._idle.put(worker)

    async def check(self, gold: str, pred: str) -> SymbolicResult:
        """The symbolic verdict on (gold, pred), from the cache or a worker."""
        key = (gold, pred)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        self.checks += 1
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._threads, self._check_blocking, gold, pred)
        except (OSError, RuntimeError) as exc:
            return SymbolicResult("unparsable", f"symbolic worker unavailable: {exc}")
        if result.verdict == "timeout":
            self.timeouts += 1
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def close(self) -> None:
        """Stop the worker processes (new ones start if the checker is used again)."""
        with self._lock:
            live, self._live = self._live, set()
        for worker in live:
            worker.kill()
