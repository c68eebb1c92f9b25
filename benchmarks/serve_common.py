"""What the serve-sim benchmarks share: the temperature, solver prompts, in-process requests, a served server."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.throughput import free_port
from protocols.messages import ChatMessage, CompletionRequest, Problem, RequestMeta

T = 0.7


def solver_messages(problem: Problem) -> list[dict[str, str]]:
    from orchestrators.prompts import solver_messages as messages

    return [{"role": m.role, "content": m.content} for m in messages(problem)]


def in_process_request(card: str, problem: Problem, messages: list[dict[str, str]], index: int, **meta: Any) -> Any:
    chat = tuple(ChatMessage(role=m["role"], content=m["content"]) for m in messages)  # type: ignore[arg-type]
    meta_ = RequestMeta(problem=problem, problem_id=problem.id, **meta)
    return CompletionRequest(model=card, messages=chat, temperature=T, sample_index=index, meta=meta_)


@contextlib.contextmanager
def serve_sim(cards: list[str], workers: int = 1) -> Iterator[tuple[str, int]]:
    """``slmsim serve-sim`` in its own process, as a user runs it: yields its base URL and pid."""
    from experiments.serve.local_llm import wait_ready

    port = free_port()
    command = [sys.executable, "-m", "experiments.serve.cli", "--port", str(port), "--cards", ",".join(cards)]
    proc = subprocess.Popen([*command, "--workers", str(workers)], cwd=Path(__file__).resolve().parents[1])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url, 120.0, proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)  # a loaded machine can take a while to tear the workers down
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
