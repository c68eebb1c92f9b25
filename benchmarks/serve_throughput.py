"""Part 1 of ``benchmarks.serve_sim``: serve-sim requests/s against the in-process simulator's calls/s.

See ``benchmarks/serve_sim.py`` (the command) and docs/serve_sim.md, "Throughput".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.serve_common import T, in_process_request, serve_sim, solver_messages
from protocols.messages import Problem

WARM_PASSES = 12


async def throughput(backend: Any, card: str, problems: list[Problem], args: argparse.Namespace) -> None:
    """Requests/s over HTTP (a cheap keep-alive client in its own process) vs in-process calls/s, same run.

    Each worker count gets ``--rounds`` timed HTTP runs, each between two in-process windows
    (the machine is shared: windows close in time see the same load); a round's ratio is
    against the faster of its two windows (the conservative choice), and the median round is
    reported, with every round's ratio beside it.
    """
    from benchmarks.http_load import encode_get, encode_post, run_load
    from experiments.serve.cli import freeze_start_up

    clients, total = args.clients, args.requests
    requests = [in_process_request(card, p, solver_messages(p), i) for i, p in enumerate(problems)]

    async def calls() -> tuple[float, float]:
        """One in-process window: calls/s and CPU seconds a call."""
        queue, count = list(requests), 0
        started, cpu = time.perf_counter(), time.process_time()
        while count < total:
            await asyncio.gather(*(backend.complete(r) for r in queue[:clients]))
            count += clients
            queue = queue[clients:] + queue[:clients]
        return count / (time.perf_counter() - started), (time.process_time() - cpu) / count

    await calls()  # warm-up: the simulator's per-problem caches, as the server's warm-up pass does
    # serve-sim freezes its start-up heap; so does this arm, with the same call, or a full
    # collection walking this process's data sets and models, landing in one window but not
    # the other, made that window 10-15% slower (docs/serve_sim.md, "Throughput").
    freeze_start_up()
    windows = [await calls()]
    bodies = [{"model": card, "messages": solver_messages(p), "temperature": T} for p in problems]
    rows, warm = [], []
    for workers in (int(w) for w in args.workers.split(",")):
        rounds = []
        with serve_sim([card], workers) as (url, pid):
            host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
            chat = [encode_post(host, int(port), "/v1/chat/completions", b) for b in bodies]
            warm.append(warm_up(url, functools.partial(run_load, host, int(port), chat, clients, total)))
            for _ in range(args.rounds):
                cpu = server_cpu_s(pid)
                served = run_load(host, int(port), chat, clients, total)
                cpu = (server_cpu_s(pid) - cpu) / max(1, served.requests)
                windows.append(await calls())
                (rate_0, cpu_0), (rate_1, cpu_1) = windows[-2:]
                rounds.append((served.rate / max(rate_0, rate_1), served, cpu, min(cpu_0, cpu_1)))
            ceiling = run_load(host, int(port), [encode_get(host, int(port), "/health")], clients, total)
        rows.append((workers, sorted(rounds, key=lambda r: r[0]), ceiling))
    load = f"machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    local = ", ".join(f"{rate:.0f}" for rate, _ in windows)
    print(f"throughput at {clients} concurrent keep-alive clients, {total} requests per run, {args.rounds} runs per "
          f"row ({load}); in-process simulator windows, calls/s: {local}; warm-up passes until every request was a "
          f"cache hit: {' / '.join(map(str, warm))}")  # fmt: skip
    print("  workers | chat req/s | ratio to in-process | all runs' ratios | /health req/s (HTTP ceiling) | errors | "
          "server CPU ms/req | client CPU ms/req | in-process ms/call | CPU ratio | idle 2-core ratio")  # fmt: skip
    for workers, rounds, ceiling in rows:
        ratio, served, cpu, local_cpu = rounds[len(rounds) // 2]
        client = served.cpu_s / max(1, served.requests)
        errors = ceiling.errors + sum(r[1].errors for r in rounds)
        every = " ".join(f"{r[0]:.3f}" for r in rounds)
        print(f"  {workers:7} | {served.rate:10.0f} | {ratio:19.3f} | {every:16} | {ceiling.rate:28.0f} | {errors:6} | "
              f"{cpu * 1e3:17.3f} | {client * 1e3:17.3f} | {local_cpu * 1e3:18.3f} | {local_cpu / cpu:9.3f} | "
              f"{idle_ratio(workers, cpu, client, local_cpu):17.3f}")  # fmt: skip
    medians = {w: r[len(r) // 2] for w, r, _ in rows}
    idle = {w: idle_ratio(w, m[2], m[1].cpu_s / max(1, m[1].requests), m[3]) for w, m in medians.items()}
    best, best_idle = max(medians, key=lambda w: medians[w][0]), max(idle, key=lambda w: idle[w])
    print(f"  best --workers here: {best} (ratio {medians[best][0]:.3f}); on an idle 2-core machine, by these CPU "
          f"costs: {best_idle} (idle 2-core ratio {idle[best_idle]:.3f})")  # fmt: skip
    print(
        "  (target: ratio >= 0.3. Each row is its median run; the CPU ratio is the in-process CPU a call over the "
        "server's CPU a request, which machine load changes less; the idle 2-core ratio is what these CPU costs "
        "give on a 2-core machine running nothing else: see idle_ratio)",
        flush=True,
    )


def warm_up(url: str, run: Callable[[], Any], most: int = WARM_PASSES) -> int:
    """Load passes until one is served wholly from the server's parsed-body caches (``cached`` in its stats).

    The in-process arm is warm after one pass over the bodies. A served pass is not, with
    ``--workers N``: the kernel spreads connections over the workers, each worker caches only
    the bodies it has answered, and a body new to a worker costs it about 0.35 ms more to
    read, plus about 1 ms the first time its simulator meets the problem (docs/serve_sim.md,
    "Two workers"). So both arms are timed at their steady state; returns the passes taken.
    """
    for passes in range(1, most + 1):
        before = served_stats(url).get("cached", 0)
        requests = run().requests
        if served_stats(url).get("cached", 0) - before >= requests:
            return passes
    return most


def served_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/slmsim/stats", timeout=30) as reply:
        stats: dict[str, Any] = json.load(reply)
    return stats


def idle_ratio(workers: int, server_s: float, client_s: float, local_s: float, cores: int = 2) -> float:
    """The ratio the measured CPU costs imply on an otherwise idle machine of ``cores`` cores.

    The in-process simulator is one process: ``1 / local_s`` calls/s on one core. Served, a
    request costs ``server_s`` CPU (over all workers) and ``client_s`` in the load generator;
    each process runs on at most one core, and together they have ``cores``. So the rate is
    the least of ``workers / server_s``, ``1 / client_s`` and ``cores / (server_s + client_s)``.
    """
    rate = min(workers / server_s, 1 / client_s if client_s > 0 else math.inf, cores / (server_s + client_s))
    return rate * local_s


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children (the workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
