"""CPU a request of the model actor's openai path in one process, against a bare aiohttp client.

    python -m benchmarks.backend_cpu                   # 1,024 in flight, 4 rounds, 3 alternating repeats
    python -m benchmarks.backend_cpu --in-flight 256 --repeats 5

Starts serve-sim (a subprocess, 0.2 s latency per request, so replies come back in bursts as
in ``benchmarks.throughput``) and measures this process's CPU (``time.process_time``) per
request for three clients, alternating, against the same server:

* **bare aiohttp**: one ``ClientSession``, ``json=`` bodies, ``read()`` (the baseline a user
  would write);
* **bare http1**: the openai backend's own client (``actors.backends.http1``) with orjson;
* **model actor path**: ``ModelActor.complete_stream`` in process (no Ray) over the full
  backend chain (retry, in-flight bound, ``openai`` backend), requests packed and replies
  unpacked as the streaming call carries them (``actors.coalesce``).

The model actor's CPU is what sits on the critical path of a burst at high concurrency
(``docs/cluster.md``); this isolates it from Ray, the runner and the driver. The ratio
printed is the path's CPU over the bare aiohttp client's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp

from actors.model import WIRE, ModelActor
from benchmarks.bare_clients import CARD, QUESTION, Send, aiohttp_send, http1_pool, http1_send
from benchmarks.throughput import free_port, start_server
from protocols.config import ModelSpec, StoreSpec
from protocols.messages import ChatMessage, Completion, CompletionRequest


async def _rounds(one_round: Callable[[], Awaitable[None]], rounds: int) -> float:
    await one_round()  # warm: connections open
    started = time.process_time()
    for _ in range(rounds):
        await one_round()
    return time.process_time() - started


async def bare_aiohttp(url: str, in_flight: int, rounds: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        return await _rounds(lambda: _gather(aiohttp_send(session, url), in_flight), rounds)


async def bare_http1(url: str, in_flight: int, rounds: int) -> float:
    pool = http1_pool(url, in_flight)
    try:
        return await _rounds(lambda: _gather(http1_send(pool, 60.0), in_flight), rounds)
    finally:
        await pool.close()


async def model_actor(url: str, in_flight: int, rounds: int) -> float:
    spec = ModelSpec(name="bench", backend="openai", base_url=url, model_id=CARD, max_in_flight=in_flight)
    actor = ModelActor(spec, 0, StoreSpec(), None)
    sent = 0

    async def one_round() -> None:
        nonlocal sent
        requests = []
        for _ in range(in_flight):
            sent += 1
            message = ChatMessage(role="user", content=QUESTION)
            requests.append(CompletionRequest(model="bench", messages=(message,), max_tokens=64, sample_index=sent))
        got = 0
        async for packed in actor.complete_stream(WIRE.dump_items(requests)):
            for _, reply in WIRE.load_group(packed):
                assert isinstance(reply, Completion), reply
                got += 1
        assert got == in_flight

    try:
        return await _rounds(one_round, rounds)
    finally:
        await actor.aclose()


async def _gather(send: Send, n: int) -> None:
    """``n`` requests at once, each of which must succeed."""
    for status in await asyncio.gather(*(send() for _ in range(n))):
        assert status == 200, status


SIDES = {"bare aiohttp": bare_aiohttp, "bare http1": bare_http1, "model actor path": model_actor}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backend_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--in-flight", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-s", type=float, default=0.2)
    args = parser.parse_args(argv)
    port = free_port()
    server = start_server(port, args.latency_s)
    url = f"http://127.0.0.1:{port}/v1"
    cpu: dict[str, list[float]] = {name: [] for name in SIDES}
    try:
        for repeat in range(args.repeats):
            for name, side in SIDES.items():
                seconds = asyncio.run(side(url, args.in_flight, args.rounds))
                cpu[name].append(1000 * seconds / (args.rounds * args.in_flight))
                print(f"repeat {repeat + 1}, {name}: {cpu[name][-1]:.3f} ms CPU a request", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"\n{args.in_flight} in flight, serve-sim at {args.latency_s}s (sim-served), load {os.getloadavg()[0]:.1f}:")
    for name, value in medians.items():
        print(f"  {name}: median {value:.3f} ms CPU a request ({', '.join(f'{v:.3f}' for v in cpu[name])})")
    ratio = medians["model actor path"] / medians["bare aiohttp"]
    print(f"model actor path / bare aiohttp CPU: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
