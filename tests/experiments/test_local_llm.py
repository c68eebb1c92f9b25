"""The real model, for real: Gemma 3 270M on llama.cpp, then the same run replayed with the server stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments.runtime.config_io import config_from_tree, read_tree
from experiments.runtime.driver import run_experiment
from experiments.serve.local_llm import MODEL_ALIAS, server_command, stop_server
from tests.experiments.gemma_server import normalised

pytestmark = [pytest.mark.llm, pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "gemma_gsm8k.yaml"
PROBLEMS = 4


def _config(base_url: str, out_dir: Path, store: Path, mode: str) -> Any:
    tree = read_tree(CONFIG)
    tree["models"][0]["base_url"] = base_url
    tree["dataset"]["limit"] = PROBLEMS
    tree["orchestrator"]["max_tokens"] = 48
    tree["run"].update(out_dir=str(out_dir), progress=False)
    tree["store"] = {"mode": mode, "path": str(store)}
    return config_from_tree(tree)


def test_server_command_is_local_and_small() -> None:
    command = server_command(Path("/m.gguf"), 8089)
    assert command[1:3] == ["-m", "llama_cpp.server"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--n_threads") + 1] == "2"
    assert command[command.index("--model_alias") + 1] == MODEL_ALIAS


def test_live_run_then_replay_without_server_gives_identical_results(
    ray_session: None, gemma: tuple[str, Any], tmp_path: Path
) -> None:
    base_url, proc = gemma
    store = tmp_path / "store"
    live = run_experiment(_config(base_url, tmp_path / "live", store, "record"))
    assert live.n == PROBLEMS and live.errors == 0, live
    assert live.sources == {"live": PROBLEMS}
    assert live.calls == PROBLEMS and live.usage.completion_tokens > 0
    rows = normalised(tmp_path / "live" / "results.jsonl")
    texts = [r["trace"][0]["reply"]["text"] for r in rows]
    assert all(isinstance(t, str) for t in texts) and any(t.strip() for t in texts)
    assert len(list(store.glob("*.jsonl"))) >= 1

    stop_server(proc)  # replay must not need it
    assert proc.poll() is not None
    replay = run_experiment(_config(base_url, tmp_path / "replay", store, "replay"))
    assert replay.n == PROBLEMS and replay.errors == 0, replay
    assert replay.sources == {"replay": PROBLEMS}
    assert (replay.correct, replay.usage) == (live.correct, live.usage)
    assert normalised(tmp_path / "replay" / "results.jsonl") == rows
