"""Fuzzing serve-sim: hypothesis-generated requests, each must get a JSON reply below 500, quickly.

    python -m benchmarks.serve_fuzz [--examples 2000] [--big-mb 4]

Starts a SimServer (real simulator, MATH-500 + GSM8K lookup) on a free loopback port in a
thread, sends ``--examples`` generated requests (random bytes, random JSON, near-valid
bodies with wrong types, lone surrogates, deep nesting, bogus Content-Encoding, huge
fields), then one prompt of ``--big-mb`` MB. Prints the count of 5xx, non-JSON replies and
the slowest reply, and the big prompt's status and time. The bounded version (no timing)
is ``tests/experiments/test_serve_sim_fuzz.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from protocols.messages import Problem

CARD = "Llama-3.1-8B-Instruct"
PATHS = ("/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", "/v1/completions", "/v1/models/x")


@contextmanager
def threaded_server(
    problems: list[Problem], cards: tuple[str, ...] = (CARD,), seed: int = 0, **settings: Any
) -> Iterator[tuple[str, int]]:
    """A SimServer on a free loopback port, served by an event loop in a daemon thread: yields (host, port)."""
    from experiments.serve.app import ServerSettings, SimServer, start
    from experiments.serve.cli import sim_backends
    from experiments.serve.lookup import ProblemLookup

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}
    options: dict[str, Any] = {"read_timeout_s": 2.0, "seed": seed, **settings}

    async def boot() -> None:
        server = SimServer(sim_backends(cards, seed, 0.0), ServerSettings(**options), ProblemLookup(problems))
        box["runner"], box["port"] = await start(server, "127.0.0.1", 0)
        ready.set()

    def serve() -> None:
        loop.run_until_complete(boot())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("serve-sim did not start within 60 s")
    try:
        yield "127.0.0.1", int(box["port"])
    finally:
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def strategies(questions: list[str]) -> Any:
    """The hypothesis strategy of one (path, headers, body bytes) request."""
    from hypothesis import strategies as st

    text = st.one_of(
        st.text(max_size=40),
        st.sampled_from(questions),
        st.sampled_from(["\ud800", "x\udfffy", "\x00", "\u2028", "é" * 3]),
        st.integers(1, 300_000).map(lambda n: "m" * n),
    )
    scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text)
    value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                         max_leaves=12)  # fmt: skip
    role = st.one_of(st.sampled_from(["user", "system", "assistant", "tool", "developer"]), value)
    message = st.fixed_dictionaries({"role": role, "content": st.one_of(text, value)}, optional={"tool_calls": value})
    fields = {
        "model": st.one_of(st.just(CARD), text, value),
        "messages": st.one_of(st.lists(message, min_size=1, max_size=3), value),
        "prompt": st.one_of(text, value),
    }
    optional = {k: value for k in ("temperature", "n", "seed", "stop", "max_tokens", "stream", "tools", "tool_choice",
                                   "response_format", "logprobs", "top_logprobs", "slmsim_meta", "bogus")}  # fmt: skip
    optional["tools"] = st.one_of(value, st.just([{"type": "function", "function": {"name": "calc"}}]))
    near_valid = st.fixed_dictionaries(fields, optional=optional).map(lambda b: json.dumps(b).encode())
    good_options = {
        "temperature": st.floats(0, 2),
        "n": st.integers(1, 3),
        "seed": st.integers(-(2**40), 2**40),
        "stream": st.booleans(),
        "logprobs": st.booleans(),
        "stop": st.lists(st.text(min_size=1, max_size=3), max_size=2),
        "max_tokens": st.integers(1, 400),
        "tools": st.just([{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]),
        "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]),
    }
    good_message = st.fixed_dictionaries({"role": st.just("user"), "content": st.sampled_from(questions) | text})
    good = st.fixed_dictionaries(
        {"model": st.just(CARD), "messages": st.lists(good_message, min_size=1, max_size=2)}, optional=good_options
    ).map(lambda b: json.dumps(b).encode())
    deep = st.integers(1, 3000).map(lambda n: ('{"model": "x", "messages": ' + "[" * n + "]" * n + "}").encode())
    body = st.one_of(good, good, near_valid, near_valid, value.map(lambda v: json.dumps(v).encode()), st.binary(), deep)
    headers = st.fixed_dictionaries(
        {"Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1"])},
        optional={"Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "gzip, gzip"]),
                  "x-slmsim-role": st.sampled_from(["judge", "wizard", "agent", ""])},
    )  # fmt: skip
    return st.tuples(st.sampled_from(PATHS), headers, body)


@dataclass
class Outcome:
    """What the fuzzed requests got."""

    statuses: dict[int, int] = field(default_factory=dict)
    non_json: int = 0
    slowest_s: float = 0.0
    longest_error: int = 0

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)


def send(host: str, port: int, path: str, headers: dict[str, str], body: bytes, outcome: Outcome) -> None:
    """One request on a fresh connection; its status, timing and body shape go into ``outcome``."""
    if headers.get("Content-Encoding") == "gzip" and body[:1] == b"{" and len(body) % 3 == 0:
        body = gzip.compress(body)  # sometimes the claim is true
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST" if "completions" in path else "GET", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    outcome.slowest_s = max(outcome.slowest_s, elapsed)
    outcome.statuses[response.status] = outcome.statuses.get(response.status, 0) + 1
    try:
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            events = [line[6:] for line in payload.decode().split("\n\n") if line.startswith("data: ")]
            if events[-1] != "[DONE]":
                raise ValueError("stream not ended with [DONE]")
            for event in events[:-1]:
                json.loads(event)
        else:
            json.loads(payload)
    except (ValueError, IndexError):
        outcome.non_json += 1
    if response.status >= 400:
        outcome.longest_error = max(outcome.longest_error, len(payload))


def fuzz(host: str, port: int, questions: list[str], examples: int, seed: int = 0) -> Outcome:
    """Send ``examples`` hypothesis-generated requests; returns what they got."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    outcome = Outcome()

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategies(questions))
    def run(case: tuple[str, dict[str, str], bytes]) -> None:
        send(host, port, *case, outcome)

    run()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--big-mb", type=float, default=4.0)
    args = parser.parse_args(argv)
    from datasets import load_problems
    from protocols.config import DatasetSpec

    problems = load_problems(DatasetSpec(name="math500")) + load_problems(DatasetSpec(name="gsm8k"))
    with threaded_server(problems) as (host, port):
        started = time.perf_counter()
        outcome = fuzz(host, port, [p.question for p in problems[:50]], args.examples)
        wall = time.perf_counter() - started
        big = json.dumps({"model": CARD, "messages": [{"role": "user", "content": "a " * int(args.big_mb * 2**19)}]})
        one = Outcome()
        send(host, port, "/v1/chat/completions", {"Content-Type": "application/json"}, big.encode(), one)
    total = sum(outcome.statuses.values())
    print(f"fuzz: {total} requests in {wall:.1f} s; statuses {dict(sorted(outcome.statuses.items()))}")
    print(f"fuzz: 5xx={outcome.server_errors} non-JSON={outcome.non_json} slowest={outcome.slowest_s:.3f} s "
          f"longest error body={outcome.longest_error} B")  # fmt: skip
    print(f"big prompt ({len(big) / 2**20:.1f} MB): status {list(one.statuses)} in {one.slowest_s:.3f} s")
    return 0 if outcome.server_errors == 0 and outcome.non_json == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
