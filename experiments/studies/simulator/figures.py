"""Every calibration figure, simulated at several seeds, with leave-one-out predictions (``slmsim validate-sim``).

    slmsim validate-sim [--seeds 0,1,2] [--plot runs/validate_sim/figures.png] [--quick]

Prints, labelled SIMULATED:

1. every single-model figure the cards were calibrated to (MATH-500, GSM8K through the
   real pipeline and graders; GPQA over its domain structure), per seed;
2. every orchestration figure of ``orchestration_results.yaml`` (the real orchestrators on
   the SLM-MUX trio), mean and sd over the seeds, the paper's value and spread, and the
   leave-one-out prediction: refit without the figure (from the grids saved by
   ``experiments.studies.simulator.orch_fit``) and predict it;
3. the temperature table: per T, single-sample accuracy, distinct answers among 9
   samples, agreement with the greedy answer, and the self-consistency gain.

A figure passes when the seed mean is within max(its reported spread, 2) points.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from actors.backends.sim.cards import SimCards, load_cards
from experiments.studies.simulator.calibrate import (
    FITTED,
    INPUTS_PATH,
    expected_accuracy,
    gpqa_population,
    load_benchmark,
    read_yaml,
    simulated_accuracy,
)
from experiments.studies.simulator.orch_fit import (
    BENCHES,
    FIT_PATH,
    figures,
    leave_one_out,
    load_fit,
    method_configs,
    simulate,
)

BANNER = "=" * 24 + " SIMULATED (source: sim) - not measurements of real models " + "=" * 24


class Row(NamedTuple):
    """One figure: what it is, the published value and uncertainty, the simulated values per seed."""

    kind: str
    name: str
    bench: str
    target: float
    spread: float
    sims: tuple[float, ...]
    loo: float | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.sims)

    @property
    def sd(self) -> float:
        return statistics.pstdev(self.sims) if len(self.sims) > 1 else 0.0

    @property
    def ok(self) -> bool:
        return abs(self.mean - self.target) <= max(self.spread, 2.0)


async def single_rows(cards: SimCards, seeds: Sequence[int], names: Sequence[str] | None = None) -> list[Row]:
    """Every card's calibrated single-model figures, simulated at each seed."""
    problems = {b: load_benchmark(b) for b in FITTED}
    gpqa = gpqa_population(read_yaml(INPUTS_PATH))
    rows = []
    for name in names or list(cards.cards):
        card = cards.cards[name]
        for bench in FITTED:
            sims = tuple([await simulated_accuracy(cards, name, problems[bench], s) for s in seeds])
            rows.append(Row("single", name, bench, card.targets[bench].value, 0.0, sims))
        value = 100.0 * expected_accuracy(cards, name, gpqa)
        rows.append(Row("single", name, "gpqa*", card.targets["gpqa"].value, 0.0, (value,)))
    return rows


async def orchestration_rows(cards: SimCards, seeds: Sequence[int], limit: int = 500) -> list[Row]:
    """Every orchestration figure, simulated at each seed, with its leave-one-out prediction."""
    loo = leave_one_out(load_fit()) if FIT_PATH.exists() else {}
    sims: dict[str, list[float]] = {}
    for bench in BENCHES:
        for seed in seeds:
            got = await simulate(cards, bench, list(method_configs(bench)), seed, limit)
            for method, value in got.items():
                sims.setdefault(f"{bench}/{method}", []).append(value)
    rows = []
    for f in figures():
        key = f"{f.bench}/{f.method}"
        pred = loo.get(key)
        rows.append(
            Row("orchestration", f.method, f.bench, f.value, f.spread, tuple(sims[key]), pred[0] if pred else None)
        )
    return rows


class TempRow(NamedTuple):
    """Sampling behaviour at one temperature (means over problems)."""

    temperature: float
    accuracy: float
    distinct: float
    agree_greedy: float
    majority: float


async def temperature_rows(
    cards: SimCards, model: str, bench: str = "math500", temps: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 1.0, 1.3)
) -> list[TempRow]:
    """Single-sample accuracy, distinct answers among 9, agreement with greedy, majority@9, per T."""
    from experiments.studies.simulator.validate import Judge, answers, group_key, majority

    problems = load_benchmark(bench)
    judge = Judge()
    greedy = [r[0] for r in await answers(cards, model, problems, judge, 0, 1, 0.0)]
    out = []
    for t in temps:
        rows = await answers(cards, model, problems, judge, 0, 9, t)
        acc = distinct = agree = maj = 0.0
        for p, g, row in zip(problems, greedy, rows, strict=True):
            acc += sum([await judge.right(p, a) for a in row]) / len(row)
            keys = Counter(group_key(p, a) for a in row if a is not None)
            distinct += len(keys)
            gk = group_key(p, g) if g is not None else None
            agree += sum(1 for a in row if a is not None and group_key(p, a) == gk) / len(row)
            maj += (await majority(p, row, judge))[0]
        n = len(problems)
        out.append(TempRow(t, 100 * acc / n, distinct / n, 100 * agree / n, 100 * maj / n))
    return out


def format_rows(rows: Sequence[Row], seeds: Sequence[int]) -> list[str]:
    lines = [f"{'kind':13} {'figure':34} {'bench':7} {'paper':>6} {'±':>4} {'sim':>6} {'sd':>4} {'LOO':>6}  ok"]
    for r in rows:
        loo = f"{r.loo:6.1f}" if r.loo is not None else "     -"
        spread = f"{r.spread:4.1f}" if r.spread else "   -"
        lines.append(
            f"{r.kind:13} {r.name:34} {r.bench:7} {r.target:6.1f} {spread} {r.mean:6.1f} {r.sd:4.1f} {loo}  "
            f"{'yes' if r.ok else 'NO'}"
        )
    lines.append(f"sim = mean over seeds {list(seeds)}; ok = within max(spread, 2) points; LOO = refit without it")
    return lines


def plot(rows: Sequence[Row], path: Path) -> None:
    """Paper vs simulated orchestration figures, with the leave-one-out predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orch = [r for r in rows if r.kind == "orchestration"]
    fig, ax = plt.subplots(figsize=(6, 6))
    xs = [r.target for r in orch]
    ax.errorbar(
        xs,
        [r.mean for r in orch],
        xerr=[r.spread for r in orch],
        yerr=[r.sd for r in orch],
        fmt="o",
        label="fitted sim (mean ± sd over seeds)",
    )
    loo = [(r.target, r.loo) for r in orch if r.loo is not None]
    if loo:
        ax.scatter([a for a, _ in loo], [b for _, b in loo], marker="x", color="red", label="leave-one-out prediction")
    for r in orch:
        ax.annotate(f"{r.bench}/{r.name}", (r.target, r.mean), fontsize=6)
    lo, hi = min(xs) - 5, max(xs) + 5
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8)
    ax.set_xlabel("published (SLM-MUX paper, Table 1), %")
    ax.set_ylabel("SIMULATED, %")
    ax.set_title("slmsim validate-sim: orchestration figures (source: sim)")
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


async def figures_report(
    seeds: Sequence[int] = (0, 1, 2), plot_path: Path | None = None, quick: bool = False
) -> tuple[str, bool]:
    """The whole report and whether every figure passes."""
    cards = load_cards()
    names = ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct") if quick else None
    rows = await single_rows(cards, seeds, names)
    rows += await orchestration_rows(cards, seeds)
    lines = [BANNER, "[1] calibration figures (single-model targets and the SLM-MUX paper's Table 1)"]
    lines += format_rows(rows, seeds)
    best = "Gemma-2-27B-Instruct"
    lines += ["", f"[2] temperature and diversity: {best} on MATH-500, 9 samples per problem, seed 0"]
    lines.append(f"{'T':>4} {'1-sample acc':>12} {'distinct/9':>10} {'= greedy %':>10} {'maj@9':>6} {'SC gain':>8}")
    temps = await temperature_rows(cards, best)
    greedy_acc = temps[0].accuracy
    for t in temps:
        lines.append(
            f"{t.temperature:4.1f} {t.accuracy:12.1f} {t.distinct:10.2f} {t.agree_greedy:10.1f} {t.majority:6.1f} "
            f"{t.majority - greedy_acc:+8.1f}"
        )
    lines.append("SC gain = majority@9 at T minus the greedy (T=0) accuracy")
    if plot_path is not None:
        plot(rows, plot_path)
        lines.append(f"plot: {plot_path}")
    lines.append(BANNER)
    return "\n".join(lines), all(r.ok for r in rows)


def main(seeds: Sequence[int], plot_path: Path | None, quick: bool) -> int:
    text, ok = asyncio.run(figures_report(seeds, plot_path, quick))
    print(text)
    return 0 if ok else 1
