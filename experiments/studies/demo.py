"""``slmsim demo``: a small comparison on simulated models, no key and no network.

Three simulated small models answer generated arithmetic/algebra problems; the
demo compares the best single model, self-consistency, Agent Forest and SLM-MUX,
prints one table and leaves a run directory per method.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from experiments.runtime.driver import ModelPool, run_experiment_async
from experiments.runtime.report import render_table
from protocols.config import (
    AgentForestConfig,
    DatasetSpec,
    ExperimentConfig,
    ModelSpec,
    OrchestratorConfig,
    RunSpec,
    SelfConsistencyConfig,
    SingleConfig,
    SlmMuxConfig,
    StoreSpec,
)
from protocols.summary import RunSummary

MODELS = ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct")
BEST_SINGLE = "Gemma-2-27B-Instruct"


def demo_configs(out: Path, problems: int, seed: int = 0) -> list[tuple[str, ExperimentConfig]]:
    """The methods the demo compares, each a full experiment config."""
    models = tuple(ModelSpec(name=m, backend="sim") for m in MODELS)
    methods: list[tuple[str, OrchestratorConfig]] = [
        (f"single {BEST_SINGLE}", SingleConfig(model=BEST_SINGLE)),
        (f"self-consistency {BEST_SINGLE} k=9", SelfConsistencyConfig(model=BEST_SINGLE, k=9, temperature=0.7)),
        ("agent forest 3 models k=3", AgentForestConfig(models=MODELS, k=3, temperature=0.3)),
        ("SLM-MUX 3 models k=3", SlmMuxConfig(models=MODELS, k=3, temperature=0.3)),
    ]
    return [
        (
            label,
            ExperimentConfig(
                name=f"demo-{orch.kind}",
                seed=seed,
                dataset=DatasetSpec(name="synthetic", limit=problems, seed=seed),
                models=models,
                orchestrator=orch,
                run=RunSpec(out_dir=out / orch.kind, runners=2, problems_in_flight=32),
                store=StoreSpec(mode="off"),
            ),
        )
        for label, orch in methods
    ]


async def run_demo(out: Path, problems: int) -> list[tuple[str, RunSummary]]:
    """Run every demo method, sharing one pool of model actors."""
    configs = demo_configs(out, problems)
    first = configs[0][1]
    pool = ModelPool(first.seed, first.store, None)
    rows = []
    try:
        for label, config in configs:
            rows.append((label, await run_experiment_async(config, models=pool, progress_label=label)))
    finally:
        pool.shutdown()
    return rows


def demo(out: Path, problems: int = 200) -> int:
    """Run the demo and print the comparison table."""
    started = time.perf_counter()
    rows = asyncio.run(run_demo(out, problems))
    print()
    print(f"slmsim demo: {problems} generated arithmetic/algebra problems, models {', '.join(MODELS)}")
    print("SIMULATED: every completion comes from the calibrated simulator (source: sim), not a real model.")
    print(render_table(rows))
    print(f"run directories under {out}/ ; wall time {time.perf_counter() - started:.1f}s")
    return 0
