"""Requests per second through the full stack vs a bare aiohttp client, against serve-sim.

    python -m benchmarks.throughput            # the issue #14 table: 0.25/1/2 s x 64/256/1024 in flight
    python -m benchmarks.throughput --quick    # the same, 2 rounds and 1 repeat (about a third of the time)
    python -m benchmarks.throughput --latency-s 1 --in-flight 256 [--rounds 4] [--repeats 3]
    python -m benchmarks.throughput --latency-s 0.25 --in-flight 256 --queue 1   # no problems queued

Starts ``slmsim serve-sim`` (a subprocess, fixed extra latency per request), then for
each concurrency C measures, in the same run and against the same server:

* **bare**: one aiohttp session (pool of C connections), C workers posting the same
  chat request back to back (the issue #14 target's baseline: the client a user would write);
* **bare http1**: the same workers over the stack's own HTTP client (``http1.Http1Pool``,
  orjson): the stack's HTTP alone, so full against it is what the actors and Ray add;
* **full**: ``slmsim run``'s own driver loop (``experiments.runtime.feed.drive``, writing
  ``results.jsonl`` and the run log to a scratch directory) feeds a runner actor, whose
  job asks a model actor, whose backend chain (in-flight bound, retry, ``openai``
  backend) posts over HTTP (the backend's own client, ``actors.backends.http1``): driver
  -> runner actor -> model actor -> openai backend -> HTTP. Both hops are the streaming
  calls of a run (``actors.coalesce``): what is sent in one event-loop turn goes as one
  Ray call, each reply back as soon as it is done. C is the model's ``max_in_flight``,
  the requests at the server at once, as the bare client's C workers (the model actor's
  peak is checked against it); the run keeps ``--queue`` x C problems in flight (default
  2), so a reply's freed slot goes at once to a request already waiting at the model
  actor, as it would for a user saturating a server. ``--queue 1`` (no problem waits)
  puts a runner round trip before each next request: about 0.8 at 0.25 s, 256 in flight.

Each measurement sends ``rounds * C`` requests after a warm-up; the sides alternate
``repeats`` times and the medians are compared. Each side's client CPU per request (every
process of this run but serve-sim's) is printed beside it, with the load average: on a
shared machine the req/s ratio measures the other tenants too, the CPU figures less. It ends
with a table: per latency and concurrency the ratio full/bare, both req/s, the bound
(C / latency), both CPU figures, the ratio full/bare http1 and the load average. Both sides see the same server, so
the ratio is the cost of the stack, not of the simulator (whose answers are ``source:
sim-served``). The server runs on the same cores as the client side: its CPU a request
(about 0.4 ms) is spent once per request by both sides, and with a fixed latency every
reply of a round comes back in one burst, so at 1024 in flight a round's processing
(server + client) adds to the latency on the critical path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

from actors.model import BatchingRemoteModel, RemoteModel
from benchmarks.bare_clients import CARD, QUESTION, Send, aiohttp_send, http1_pool, http1_send
from benchmarks.cpu_meter import CpuMeter, describe
from experiments.runtime import feed
from experiments.runtime.driver import make_logger
from experiments.runtime.progress import Progress
from experiments.runtime.results import ResultsWriter
from protocols.config import ModelSpec, RunSpec, StoreSpec
from protocols.messages import ChatMessage, CompletionRequest, Failure, Problem, ProblemResult

MEASURE_TIMEOUT_S = 300.0


class Measure(NamedTuple):
    """Requests completed, failed, the wall time they took, and the client side's CPU seconds."""

    ok: int
    failed: int
    seconds: float
    cpu_s: float = 0.0

    @property
    def cpu_ms(self) -> float:
        """Client-side CPU per request (every process but the server's): not inflated by other tenants."""
        return 1000 * self.cpu_s / self.ok if self.ok else 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, latency_s: float) -> subprocess.Popen[bytes]:
    """serve-sim in a subprocess; returns once it answers ``/v1/models``."""
    from experiments.serve.local_llm import wait_ready

    command = [sys.executable, "-m", "experiments.serve.cli", "--port", str(port), "--cards", CARD]
    command += ["--latency-s", str(latency_s), "--no-lookup"]
    proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1", 60.0, proc)
    except BaseException:
        proc.kill()
        raise
    return proc


SERVER_PID: int | None = None
"""serve-sim's pid: its CPU (the same for both sides) is left out of the client-side figures."""


async def drive(send: Send, in_flight: int, total: int) -> Measure:
    """``total`` calls of ``send`` (one request, its status) from ``in_flight`` workers: a pass
    that warms the pool, then the measured pass."""
    ok = failed = 0
    remaining = total

    async def worker() -> None:
        nonlocal ok, failed, remaining
        while remaining > 0:
            remaining -= 1
            if await send() == 200:
                ok += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))  # warm the pool
    ok = failed = 0
    remaining = total
    with CpuMeter(exclude=SERVER_PID) as cpu:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        wall = time.perf_counter() - started
    return Measure(ok, failed, wall, cpu.seconds)


async def bare(base_url: str, in_flight: int, total: int) -> Measure:
    """``total`` requests from ``in_flight`` workers over one pooled aiohttp session."""
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await drive(aiohttp_send(session, base_url), in_flight, total)


async def bare_http1(base_url: str, in_flight: int, total: int) -> Measure:
    """As ``bare``, over the stack's own HTTP client (``http1``) and orjson: the stack's HTTP alone."""
    pool = http1_pool(base_url, in_flight)
    try:
        return await drive(http1_send(pool, MEASURE_TIMEOUT_S), in_flight, total)
    finally:
        await pool.close()


class AskJob:
    """A runner job that asks the model actor one question per problem (no grading)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._remote: Any = None

    async def __call__(self, problem: Problem, index: int) -> ProblemResult:
        request = CompletionRequest(
            model="bench",
            messages=(ChatMessage(role="user", content=problem.question),),
            max_tokens=64,
            sample_index=index,
        )
        if self._remote is None:  # the runner's own adapter, as OrchestratorJob uses (batched calls)
            self._remote = BatchingRemoteModel(self.model, "bench")
        reply = await self._remote.complete(request)
        error = reply if isinstance(reply, Failure) else None
        return ProblemResult(
            run_id="bench", problem_id=problem.id, index=index, benchmark="bench", orchestrator="bench",
            reference="42", final_text=None if error else reply.text, error=error,
        )  # fmt: skip

    def failed(self, problem: Problem, index: int, failure: Failure, wall_s: float) -> ProblemResult:
        return ProblemResult(
            run_id="bench", problem_id=problem.id, index=index, benchmark="bench", orchestrator="bench",
            reference="42", error=failure, wall_s=wall_s,
        )  # fmt: skip


class FullStack:
    """A runner actor whose job asks a model actor (openai backend) per problem, fed by
    ``slmsim run``'s own driver loop; spawned once per level.

    ``in_flight`` is the model's ``max_in_flight``: the requests at the server at once, as
    the bare client's workers. The run keeps ``queue`` times as many problems in flight
    (``problems_in_flight``), as a user saturating a server would: when a reply frees a
    request slot, a problem already waiting at the model actor's gate takes it at once,
    instead of after the result's round trip to the runner and the next request's way back.
    """

    def __init__(self, base_url: str, in_flight: int, queue: int = 2) -> None:
        from experiments.runtime.spawn import spawn_model, spawn_runner

        spec = ModelSpec(
            name="bench", backend="openai", base_url=base_url, model_id=CARD, max_in_flight=in_flight, timeout_s=60
        )
        self.in_flight = in_flight
        self.problems = queue * in_flight
        self.model = spawn_model(spec, 0, StoreSpec(), None)
        self.runner = spawn_runner(AskJob(self.model), self.problems, 600.0)
        self.warm = False
        self.roles = ""
        self.batch = 0

    async def _drive(self, total: int) -> tuple[Measure, dict[str, float]]:
        """``total`` problems through ``experiments.runtime.feed.drive``, the loop ``slmsim run`` uses,
        writing results and the log to a scratch run directory as a run does."""
        self.batch += 1
        problems = (
            (i, Problem(id=f"{self.batch}-{i}", benchmark="b", question=QUESTION, reference="42", answer_format="free"))
            for i in range(total)
        )
        with tempfile.TemporaryDirectory(prefix="slmsim-throughput-") as tmp:
            run_dir = Path(tmp)
            writer = ResultsWriter(run_dir)
            log, log_fh = make_logger(run_dir / "run.log")
            bar = Progress(total, writer.tally, "bench", enabled=False)
            run = RunSpec(out_dir=run_dir, runners=1, problems_in_flight=self.problems, problem_retries=0)
            try:
                with CpuMeter(exclude=SERVER_PID) as cpu:
                    started = time.perf_counter()
                    await feed.drive(problems, total, [self.runner], run, writer, bar, log, feed.Supervisor(0))
                    wall = time.perf_counter() - started
                tally = writer.finalize()
            finally:
                writer.close()
                log_fh.close()
        failed = sum(tally.errors.values())
        return Measure(tally.n - failed, failed, wall, cpu.seconds), cpu.by_role()

    async def measure(self, total: int) -> Measure:
        """``total`` problems through driver -> runner actor -> model actor -> openai backend -> HTTP."""
        if not self.warm:  # actors up, connection pool filled
            await self._drive(self.in_flight * 2)
            self.warm = True
        result, roles = await self._drive(total)
        stats = await RemoteModel(self.model, "bench").stats()
        if stats["peak_in_flight"] > self.in_flight:  # the comparison would not be like for like
            raise RuntimeError(f"the model actor had {stats['peak_in_flight']} requests open, over {self.in_flight}")
        self.roles = describe(roles, result.ok, "request")
        self.roles += f"; at most {stats['peak_in_flight']} requests open at once ({self.problems} problems in flight)"
        return result

    async def aclose(self) -> None:
        import ray

        ray.kill(self.runner)
        ray.kill(self.model)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


class Cell(NamedTuple):
    """One (latency, in-flight) point: median req/s and client CPU a request of each side, and the load."""

    bare_rps: float
    full_rps: float
    bare_cpu_ms: float
    full_cpu_ms: float
    load: float
    lean_rps: float = 0.0
    """The bare client over the stack's own HTTP client (``bare_http1``)."""
    lean_cpu_ms: float = 0.0

    @property
    def ratio(self) -> float:
        return self.full_rps / self.bare_rps if self.bare_rps else 0.0

    @property
    def lean_ratio(self) -> float:
        return self.full_rps / self.lean_rps if self.lean_rps else 0.0


async def measure(base_url: str, levels: list[int], rounds: int, repeats: int, queue: int = 2) -> dict[int, Cell]:
    """Median req/s and CPU (bare, full) per level; the two alternate so load drift hits both alike."""
    results: dict[int, Cell] = {}
    for level in levels:
        total = rounds * level
        stack = FullStack(base_url, level, queue)
        bares: list[Measure] = []
        leans: list[Measure] = []
        fulls: list[Measure] = []
        loads: list[float] = []
        try:
            for repeat in range(repeats):
                # A bound on each measurement: a dead actor or server must end the run, not hang it.
                async with asyncio.timeout(MEASURE_TIMEOUT_S):
                    b = await bare(base_url, level, total)
                    lean = await bare_http1(base_url, level, total)
                    f = await stack.measure(total)
                bares.append(b)
                leans.append(lean)
                fulls.append(f)
                loads.append(os.getloadavg()[0])
                print(
                    f"{level:4d} in flight, repeat {repeat + 1}: bare {b.rps:7.1f} req/s ({b.failed} failed)"
                    f"  bare http1 {lean.rps:7.1f} req/s ({lean.failed} failed)"
                    f"  full {f.rps:7.1f} req/s ({f.failed} failed)  ratio {f.rps / b.rps:.3f};"
                    f" client CPU a request: bare {b.cpu_ms:.2f} ms, bare http1 {lean.cpu_ms:.2f} ms,"
                    f" full {f.cpu_ms:.2f} ms"
                    f" (load average {loads[-1]:.1f})\n    full, by process: {stack.roles}",
                    flush=True,
                )
        finally:
            await stack.aclose()
        cell = Cell(
            _median([m.rps for m in bares]),
            _median([m.rps for m in fulls]),
            _median([m.cpu_ms for m in bares]),
            _median([m.cpu_ms for m in fulls]),
            _median(loads),
            _median([m.rps for m in leans]),
            _median([m.cpu_ms for m in leans]),
        )
        results[level] = cell
        print(
            f"{level:4d} in flight: median bare {cell.bare_rps:.1f} req/s, full {cell.full_rps:.1f} req/s;"
            f" client CPU a request bare {cell.bare_cpu_ms:.2f} ms, full {cell.full_cpu_ms:.2f} ms",
            flush=True,
        )
    return results


def print_table(table: dict[float, dict[int, Cell]]) -> None:
    """The issue #14 table: one row per (latency, in flight)."""
    head = ["latency", "in flight", "ratio full/bare", "full req/s", "bare req/s", "bound req/s"]
    head += ["client CPU a request full / bare", "ratio full/bare http1 (req/s, CPU)", "load average"]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for latency, results in table.items():
        for level, c in results.items():
            print(
                f"| {latency:g} s | {level} | {c.ratio:.2f} | {c.full_rps:.0f} | {c.bare_rps:.0f}"
                f" | {level / latency:.0f} | {c.full_cpu_ms:.2f} / {c.bare_cpu_ms:.2f} ms"
                f" | {c.lean_ratio:.2f} ({c.lean_rps:.0f} req/s, {c.lean_cpu_ms:.2f} ms) | {c.load:.1f} |"
            )
    worst = min((c.ratio, lat, lvl) for lat, r in table.items() for lvl, c in r.items())
    print(f"lowest ratio {worst[0]:.2f} (at {worst[1]:g} s, {worst[2]} in flight); target >= 0.9")
    print("bare: an aiohttp client (the target's baseline); bare http1: the stack's own HTTP client alone")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--latency-s", default="0.25,1,2", help="serve-sim's fixed latency per request; comma-separated for a table"
    )
    parser.add_argument("--in-flight", default="64,256,1024", help="comma-separated concurrency levels")
    parser.add_argument("--rounds", type=int, default=4, help="requests per level = rounds x in-flight")
    parser.add_argument("--repeats", type=int, default=3, help="alternating bare/full measurements per level")
    parser.add_argument(
        "--queue", type=int, default=2, help="the full stack's problems in flight per request slot (1: none wait)"
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds, 1 repeat (about a third of the time)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.repeats = 2, 1
    if args.queue < 1:
        parser.error(f"--queue must be at least 1, not {args.queue}")
    levels = [int(x) for x in args.in_flight.split(",")]
    latencies = [float(x) for x in args.latency_s.split(",")]

    from experiments.runtime.spawn import ensure_ray

    # A SIGTERM (e.g. from `timeout`) must still stop the server subprocess in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    table: dict[float, dict[int, Cell]] = {}
    for latency in latencies:
        port = free_port()
        server = start_server(port, latency)
        global SERVER_PID
        SERVER_PID = server.pid
        try:
            print("starting Ray ...", flush=True)
            ensure_ray()
            print(
                f"serve-sim at 127.0.0.1:{port} (on this machine's cores too), {latency}s latency per request; "
                f"{args.rounds} x in-flight requests per measurement, {args.repeats} repeats (median)"
            )
            url = f"http://127.0.0.1:{port}/v1"
            table[latency] = asyncio.run(measure(url, levels, args.rounds, args.repeats, args.queue))
        finally:
            server.terminate()
            server.wait(timeout=10)
        ratios = ", ".join(f"{level} in flight {c.ratio:.2f}" for level, c in table[latency].items())
        print(f"ratio full/bare at {latency}s: {ratios}")
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
