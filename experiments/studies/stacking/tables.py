"""Tables and the plot a stacking search writes: per-level warm-up, per-layer candidates, test."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrators.stacking_search import Evaluation, StackResult

COLUMNS = (
    "structure",
    "layer",
    "score",
    "correct",
    "n",
    "errors",
    "total_tokens",
    "tokens by layer (L0/L1/...)",
    "cost_usd",
    "wall_s",
)


def tokens_by_layer(e: Evaluation) -> str:
    """Total tokens spent at each layer (raw models = L0), e.g. ``1200/800/300``."""
    ordered = sorted(e.per_layer.items(), key=lambda kv: int(kv[0].split("_")[-1]))
    return "/".join(str(int(row.get("total_tokens", 0))) for _, row in ordered) or "-"


def markdown_table(rows: Sequence[Evaluation], title: str, extra: dict[str, list[Any]] | None = None) -> str:
    """A markdown table of evaluations (optionally with extra leading columns)."""
    extra = extra or {}
    head = [*extra, *COLUMNS]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, e in enumerate(rows):
        cells = [str(v[i]) for v in extra.values()]
        cells += [f"`{e.structure}`", str(e.layer), f"{e.score:.3f}", str(e.correct), str(e.n), str(e.errors)]
        cells += [str(e.total_tokens), tokens_by_layer(e), f"{e.cost_usd:.4f}", f"{e.wall_s:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(out: Path, stem: str, rows: Sequence[Evaluation], title: str, **extra: list[Any]) -> None:
    (out / f"{stem}.json").write_text(json.dumps([r.model_dump(mode="json") for r in rows], indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown_table(rows, title, extra) + f"\nSource: {source_of(rows)}.\n")


def source_of(evaluations: Sequence[Evaluation]) -> str:
    """SIMULATED (FAKE) when every completion came from the simulator (the fake), else the kinds seen."""
    kinds = sorted({k for e in evaluations for k, v in e.sources.items() if v})
    if kinds in (["sim"], ["fake"]):
        return "SIMULATED" if kinds == ["sim"] else "FAKE"
    return "+".join(kinds) or "no completions"


def plot_score_vs_layer(
    out: Path,
    warmup: dict[str, list[Evaluation]],
    result: StackResult | None,
    extras: dict[str, float],
    source: str,
) -> None:
    """Training score against structure height: warm-up chains, stacking candidates, reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, levels in warmup.items():
        ax.plot([e.layer for e in levels], [e.score for e in levels], marker="o", label=f"warm-up {model}")
    if result is not None:
        for i, layer in enumerate(result.layers, start=1):
            ax.scatter([e.layer for e in layer], [e.score for e in layer], marker="x", label=f"stacking layer {i}")
        ax.scatter([result.winner.layer], [result.winner.score], marker="*", s=200, label="chosen (train)")
    for label, value in extras.items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey" if "baseline" in label else "black")
        ax.annotate(label, (0, value), fontsize=7, va="bottom")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (height of the structure; X_k has k)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Hierarchical tool stacking: score vs layer ({source})")
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "score_vs_layer.png", dpi=120)
    plt.close(fig)
