"""``serve-sim --workers N``: N forked server processes on one port, with one sample counter.

One Python process answers on one core; the simulator's own work is a fraction of a
request's cost, the rest is HTTP and JSON, so more cores need more processes. The parent
builds the server once (datasets, lookup index, simulated models, and the simulator's facts
of every indexed problem: ``warm_simulators``), reserves the port with a
bound, never-listening ``SO_REUSEPORT`` socket (so port 0 gets one number for all), then
forks the workers: each listens on that port with ``SO_REUSEPORT`` and the kernel spreads
connections over them (a shared accept socket would hand a burst of connections to one).

Outputs stay a pure function of (server seed, model, request, seed): the per-prompt counter
is shared (``counters.SharedCounters``), so identical requests without a seed draw
successive samples whichever worker answers; ``/v1/slmsim/stats`` sums every worker's
counts. Each worker draws injected faults from its own stream (seeded by the server seed
and its number), and reply ids carry the worker number.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing as mp
import signal
import socket
import sys
from typing import Any

from experiments.serve.app import SimServer, start
from experiments.serve.counters import SharedCounters

START_TIMEOUT_S = 60.0


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A bound, not listening, ``SO_REUSEPORT`` socket on ``host:port``: it fixes the port for all workers."""
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        raise
    return holder, int(holder.getsockname()[1])


def warm_simulators(server: SimServer) -> int:
    """Compute every indexed problem's simulator facts once, in the parent, before the fork.

    A problem's facts (difficulty, wrong-answer pools) cost the simulator about 0.6 ms the
    first time it meets the problem. Forked workers inherit what the parent computed (pages
    shared, frozen with the rest of start-up); computed in each worker, the same facts were
    paid once per worker, during its first requests (docs/serve_sim.md, "Two workers").
    Returns the problems warmed (at most the simulator's cache: beyond it they would evict each other).
    """
    from actors.backends.sim.backend import SimBackend
    from actors.backends.sim.world import CACHE_SIZE

    worlds = {id(b.world): b.world for b in server.backends.values() if isinstance(b, SimBackend)}
    problems = list(itertools.islice(server.lookup.problems(), CACHE_SIZE))
    for world in worlds.values():
        for problem in problems:
            world.facts(problem)
    return len(problems) if worlds else 0


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):  # a worker must not outlive a killed parent
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker(server: SimServer, host: str, port: int, number: int, ready: Any) -> None:
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    server.become_worker(number)

    async def run() -> None:
        try:
            runner, _ = await start(server, host, port, reuse_port=True)
        except OSError as exc:
            ready.put(f"worker {number}: cannot listen on {host}:{port}: {exc.strerror or exc}")
            return
        ready.put(None)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve_workers(server: SimServer, host: str, port: int, workers: int) -> None:
    """Serve with ``workers`` forked processes until interrupted (``ValueError`` if they cannot listen)."""
    try:
        holder, port = reserve_port(host, port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.counters = SharedCounters()
    server.share(workers)
    context = mp.get_context("fork")  # the workers share the parent's loaded datasets and models
    ready = context.Queue()
    procs = [context.Process(target=_worker, args=(server, host, port, i, ready), daemon=True) for i in range(workers)]
    stop = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated parent stops its workers
    try:
        for proc in procs:
            proc.start()
        errors = [ready.get(timeout=START_TIMEOUT_S) for _ in procs]
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            raise ValueError(failed)
        print(
            f"serve-sim: {len(server.backends)} simulated model(s) at http://{host}:{port}/v1 (source: sim); "
            f"{len(server.lookup)} problems indexed; {workers} workers",
            flush=True,
        )
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, stop)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(5)
        holder.close()
