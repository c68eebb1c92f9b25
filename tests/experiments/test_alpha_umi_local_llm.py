"""alpha-UMi on the real Gemma 3 270M (llama.cpp, completions endpoint), then replayed with the server stopped."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.runtime.config_io import load_model
from experiments.serve.local_llm import missing_packages, start_server, stop_server
from experiments.studies.alpha_umi.loop_run import run_loop_async
from protocols.alpha_umi import AlphaUmiConfig

pytestmark = [pytest.mark.llm, pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "alpha_umi_gemma.yaml"
VOLATILE = {"wall_s", "latency_s", "source", "sources"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The llama.cpp server on a free port; (base_url, process).

    Never skipped, in CI or not: the README's test command installs the ``local-llm`` extra,
    so a missing package is a broken install and the test must say so.
    """
    missing = missing_packages()
    if missing:
        pytest.fail(
            f"the real-model test needs {missing}: install the test extras as the README does, "
            "pip install -e '.[dev,local-llm]'"
        )
    port = _free_port()
    proc = start_server(port, log=tmp_path_factory.mktemp("llama") / "server.log")
    yield f"http://127.0.0.1:{port}/v1", proc
    stop_server(proc)


def _config(base_url: str, out: Path, store: Path, mode: str) -> AlphaUmiConfig:
    return load_model(
        AlphaUmiConfig,
        CONFIG,
        [
            f"models.0.base_url={base_url}",
            "dataset.count=2",
            "agent.max_tokens=40",
            "agent.max_steps=1",
            "agent.max_model_calls=2",
            f"run.out_dir={out}",
            "run.progress=false",
            f"store.mode={mode}",
            f"store.path={store}",
        ],
    )


def _normalised(path: Path) -> list[Any]:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in VOLATILE}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return [strip(json.loads(line)) for line in path.read_text().splitlines()]


def test_live_roles_then_replay_without_server_give_identical_results(
    ray_session: None, gemma: tuple[str, Any], tmp_path: Path
) -> None:
    base_url, proc = gemma
    store = tmp_path / "store"
    live = asyncio.run(run_loop_async(_config(base_url, tmp_path / "live", store, "record")))
    assert live.n == 2 and live.sources.get("live", 0) > 0 and live.errors == 0
    assert set(live.usage_by_role) >= {"planner"}
    calls = [json.loads(x) for x in (tmp_path / "live" / "results.jsonl").read_text().splitlines()]
    texts = [e["reply"]["text"] for r in calls for e in r["trace"] if e["kind"] == "call"]
    assert texts and all(isinstance(t, str) for t in texts)  # real generations, whatever their quality
    stop_server(proc)
    replay = asyncio.run(run_loop_async(_config(base_url, tmp_path / "replay", store, "replay")))
    assert replay.sources.get("replay", 0) == live.sources["live"] and "live" not in replay.sources
    assert _normalised(tmp_path / "live" / "results.jsonl") == _normalised(tmp_path / "replay" / "results.jsonl")
