"""``serve-sim --workers N``: one sample counter and one set of stats for all the forked workers."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from experiments.serve.counters import LocalCounters, SharedCounters
from experiments.serve.exchange import Request
from protocols.messages import Problem

REPO = Path(__file__).resolve().parents[2]
CARD = "Llama-3.2-3B-Instruct"


def _take_many(counters: SharedCounters, key: int, times: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put([counters.take(key, 1) for _ in range(times)])


def test_shared_counters_hand_out_each_index_once_across_processes() -> None:
    counters = SharedCounters(slots=64)
    out: mp.Queue = mp.get_context("fork").Queue()  # type: ignore[type-arg]
    procs = [mp.get_context("fork").Process(target=_take_many, args=(counters, 12345, 50, out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    taken = sorted(i for _ in procs for i in out.get(timeout=30))
    for proc in procs:
        proc.join(10)
    assert taken == list(range(150))  # no index twice, none skipped
    assert counters.take(999, 2) == 0 and counters.take(999, 1) == 2  # another prompt counts on its own


def test_shared_counters_forget_everything_when_full_rather_than_probe_forever() -> None:
    counters = SharedCounters(slots=10)
    for key in range(7):  # 0.7 of the table
        assert counters.take(key * 2 + 1, 1) == 0
    assert counters.take(1, 1) == 1  # still remembered
    assert counters.take(101, 1) == 0  # a new prompt in a full table: cleared, so prompt 1 starts again
    assert counters.take(1, 1) == 0


def test_local_counters_forget_the_least_recently_used_prompt() -> None:
    counters = LocalCounters(entries=2)
    assert [counters.take(1, 1), counters.take(2, 3), counters.take(1, 1), counters.take(3, 1)] == [0, 0, 1, 0]
    assert counters.take(1, 1) == 2 and counters.take(2, 1) == 0  # 2 was the least recently used


def test_two_workers_draw_successive_samples_of_one_prompt_and_sum_their_stats(tmp_path: Path) -> None:
    from benchmarks.serve_fuzz import threaded_server
    from datasets import load_problems
    from protocols.config import DatasetSpec

    problem = load_problems(DatasetSpec(name="gsm8k"))[3]
    body = {"model": CARD, "messages": [{"role": "user", "content": problem.question}], "temperature": 0.7}
    problems = tmp_path / "gsm8k.jsonl"  # one problem, so the workers start in seconds
    problems.write_text(problem.model_dump_json() + "\n")
    command = [sys.executable, "-m", "experiments.serve.cli", "--port", "0", "--cards", CARD, "--workers", "2"]
    proc = subprocess.Popen(
        [*command, "--no-lookup", "--problems", str(problems)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://\S+/v1)", line)
        assert found is not None and "2 workers" in line, line
        replies = [_post(found.group(1), body) for _ in range(12)]  # a connection each: spread over both workers
        with urllib.request.urlopen(f"{found.group(1)}/slmsim/stats", timeout=30) as reply:
            stats = json.loads(reply.read())
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    with threaded_server([problem], (CARD,), seed=0) as (host, port):  # one process: samples 0..11
        single = [_post(f"http://{host}:{port}/v1", body) for _ in range(12)]
    assert {str(r["id"]).split("-")[1] for r in replies} == {"sim0", "sim1"}  # both workers answered
    assert sorted(map(_text, replies)) == sorted(map(_text, single))  # the same 12 samples, none twice
    assert stats["requests"] == 12 and stats["recognised"] == 12 and stats["workers"] == 2
    assert stats["cached"] == 10  # each worker read the body once; every later copy came from its body cache


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as reply:
        data: dict[str, object] = json.loads(reply.read())
    return data


def _text(reply: dict[str, object]) -> str:
    return str(reply["choices"][0]["message"]["content"])  # type: ignore[index]


async def test_the_parent_builds_every_indexed_problems_simulator_facts_before_the_fork() -> None:
    from actors.backends.sim.backend import SimBackend
    from actors.backends.sim.cards import load_cards
    from experiments.serve.app import SimServer
    from experiments.serve.lookup import ProblemLookup
    from experiments.serve.workers import warm_simulators
    from protocols.config import ModelSpec
    from tests.experiments.serve_sim_helpers import PROBLEMS

    cards = load_cards().model_copy()  # a card set of its own, so a world of its own, empty
    backend = SimBackend(ModelSpec(name=CARD, backend="sim", card=CARD), 0, cards)
    server = SimServer({CARD: backend}, lookup=ProblemLookup(PROBLEMS))
    assert sorted(p.id for p in server.lookup.problems()) == sorted(p.id for p in PROBLEMS)
    assert warm_simulators(server) == len(PROBLEMS)
    built: list[str] = []
    original = backend.world._build_facts

    def counted(problem: Problem) -> Any:
        built.append(problem.id)
        return original(problem)

    backend.world._build_facts = counted  # type: ignore[method-assign]
    for problem in PROBLEMS:  # a worker's first request about each problem finds its facts ready
        body = {"model": CARD, "messages": [{"role": "user", "content": problem.question}], "temperature": 0.7}
        reply = await server.handle(Request("POST", "/v1/chat/completions", {}, json.dumps(body).encode()))
        assert reply.status == 200 and reply.headers["x-slmsim-problem"] == f"{problem.benchmark}/{problem.id}"
    assert built == []
