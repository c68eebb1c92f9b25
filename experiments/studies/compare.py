"""Compute-matched comparison: every method run on the same problems, placed at its token cost.

"Beats" always means "at what cost": the table gives accuracy with its 95% interval next
to total tokens, cost and calls, and the plot puts accuracy against total tokens.

A comparison file holds a ``base`` experiment (everything but the orchestrator) and a
list of ``methods`` (orchestrator configs, each with an optional ``label``); each method
runs into ``<base.run.out_dir>/<label>``. A top-level ``backend`` mapping is allowed as
the holder of a YAML anchor that the models merge (``<<: *backend``), so switching every
model from simulated to live is a one-line change (see ``docs/slm_mux.md``).

``slmsim compare CONFIG.yaml [key=value ...]`` (overrides address the file's tree, e.g.
``base.dataset.limit=50``).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.runtime.config_io import ConfigError, apply_overrides, config_from_tree, read_tree
from experiments.runtime.driver import ModelPool, run_experiment_async
from experiments.runtime.lock import hold
from experiments.runtime.names import slug
from experiments.runtime.preflight import check_run, load_dataset
from experiments.runtime.results import SIMULATED_SOURCES, source_kinds, source_label
from protocols.config import ExperimentConfig
from protocols.summary import RunSummary

RESERVED = {"base", "methods", "backend"}


def configs_from_tree(tree: dict[str, Any]) -> list[ExperimentConfig]:
    """One validated experiment config per method of a comparison tree."""
    unknown = sorted(set(tree) - RESERVED)
    if unknown:
        raise ConfigError(f"comparison: unknown top-level key(s) {unknown}; expected base, methods, backend")
    base = tree.get("base")
    methods = tree.get("methods")
    if not isinstance(base, dict) or not isinstance(methods, list) or not methods:
        raise ConfigError("comparison: needs a 'base' mapping and a non-empty 'methods' list")
    out = Path(base.get("run", {}).get("out_dir", "runs/comparison"))
    configs, labels = [], set()
    for i, method in enumerate(methods):
        if not isinstance(method, dict):
            raise ConfigError(f"comparison: methods.{i} is not a mapping")
        method = dict(method)
        label = str(method.pop("label", None) or f"{method.get('kind', 'method')}-{i}")
        if label in labels:
            raise ConfigError(f"comparison: duplicate method label {label!r}")
        labels.add(label)
        item = copy.deepcopy(base)
        item["name"] = f"{base.get('name', 'comparison')}-{slug(label)}"
        item["orchestrator"] = method
        item.setdefault("run", {})["out_dir"] = str(out / slug(label))
        try:
            configs.append(config_from_tree(item))
        except ConfigError as exc:
            raise ConfigError(f"comparison method {label!r}: {exc}") from None
    return configs


def load_comparison(path: str | Path, overrides: Sequence[str] = ()) -> list[ExperimentConfig]:
    """Read a comparison YAML (+ overrides) into one experiment config per method."""
    return configs_from_tree(apply_overrides(read_tree(path), list(overrides)))


async def run_comparison_async(configs: Sequence[ExperimentConfig], *, parallel: int = 2) -> list[RunSummary]:
    """Run every config (up to ``parallel`` at once), sharing model actors; summaries in input order."""
    if not configs:
        return []
    # Check every method and load each distinct dataset once, up front, so bad input
    # fails before any actor starts or any file is written.
    problems_cache: dict[str, Any] = {}
    for config in configs:
        check_run(config)
        key = config.dataset.model_dump_json()
        if key not in problems_cache:
            problems_cache[key] = load_dataset(config.dataset)
    first = configs[0]
    models = ModelPool(first.seed, first.store, first.store.path, first.run.actor_restarts)
    summaries: list[RunSummary | None] = [None] * len(configs)
    sem = asyncio.Semaphore(parallel)

    async def one(i: int, config: ExperimentConfig) -> None:
        key = config.dataset.model_dump_json()
        async with sem:
            summaries[i] = await run_experiment_async(
                config, models=models, problems=problems_cache[key], progress_label=config.name
            )

    try:
        with hold(common_dir(configs), "slmsim compare"):
            async with asyncio.TaskGroup() as group:
                for i, config in enumerate(configs):
                    group.create_task(one(i, config))
    finally:
        if models.handles:
            models.shutdown()
    return [s for s in summaries if s is not None]


def run_comparison(configs: list[ExperimentConfig], *, parallel: int = 2) -> list[RunSummary]:
    """Run each method's experiment (resumable, model actors shared) and return their summaries in order.

    All configs should share seed and store settings (the shared model actors use the
    first config's); a model name must mean the same spec in every config.
    """
    return asyncio.run(run_comparison_async(configs, parallel=parallel))


def label_of(config: ExperimentConfig) -> str:
    """A method's short label: its run directory's name (the ``label`` of the comparison file)."""
    return config.run.out_dir.name


def render(configs: Sequence[ExperimentConfig], summaries: Sequence[RunSummary]) -> str:
    """The comparison table (markdown), simulated results labelled as such."""
    head = "| method | accuracy | 95% CI | total tokens | tokens/problem | cost USD | calls | errors | source |"
    lines = [head, "|" + "---|" * 9]
    for config, s in zip(configs, summaries, strict=True):
        lines.append(
            f"| {label_of(config)} | {s.accuracy:.3f} | [{s.ci95_low:.3f}, {s.ci95_high:.3f}] | {s.usage.total_tokens} "
            f"| {s.tokens_per_problem:.0f} | {s.cost_usd:.4f} | {s.calls} | {s.errors} | {source_label(s)} |"
        )
    sources = {source_label(s) for s in summaries}
    if sources == {"simulated"}:
        note = "SIMULATED: every completion came from the calibrated simulator (source: sim), not a real model."
    elif sources == {"FAKE (test double)"}:
        note = "FAKE: every completion came from the test double (source: fake), no model at all."
    else:
        note = f"sources: {sorted(sources)}"
    n = {s.n for s in summaries}
    return "\n".join([f"compute-matched comparison on {sorted(n)} problems — {note}", *lines])


def plot(configs: Sequence[ExperimentConfig], summaries: Sequence[RunSummary], path: Path) -> Path:
    """Accuracy (with its 95% interval) against total tokens, one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for config, s in zip(configs, summaries, strict=True):
        x = s.usage.total_tokens
        ax.errorbar(
            [x],
            [s.accuracy],
            yerr=[[max(0.0, s.accuracy - s.ci95_low)], [max(0.0, s.ci95_high - s.accuracy)]],
            fmt="o",
            capsize=3,
        )
        ax.annotate(label_of(config), (x, s.accuracy), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("total tokens (log scale)")
    ax.set_ylabel("accuracy")
    simulated = all(set(source_kinds(s)) <= SIMULATED_SOURCES for s in summaries)
    fake = all(source_kinds(s) == ["fake"] for s in summaries)
    label = "SIMULATED" if simulated else "FAKE" if fake else "live/replay"
    ax.set_title(f"accuracy vs total tokens ({label})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(configs: Sequence[ExperimentConfig], summaries: Sequence[RunSummary], out: Path) -> list[Path]:
    """``comparison.md``, ``comparison.json`` and ``accuracy_vs_tokens.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(render(configs, summaries) + "\n")
    rows = [
        {
            "method": label_of(c),
            "name": c.name,
            "orchestrator": c.orchestrator.model_dump(mode="json"),
            "summary": s.model_dump(mode="json"),
        }
        for c, s in zip(configs, summaries, strict=True)
    ]
    (out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n")
    return [out / "comparison.md", out / "comparison.json", plot(configs, summaries, out / "accuracy_vs_tokens.png")]


def common_dir(configs: Sequence[ExperimentConfig]) -> Path:
    """The directory holding every method's run directory."""
    parents = {c.run.out_dir.parent for c in configs}
    return parents.pop() if len(parents) == 1 else Path("runs") / "comparison"
