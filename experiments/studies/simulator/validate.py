"""Validation report of the SIMULATED models (``slmsim validate-sim``): how sim cards behave.

    slmsim validate-sim [--seeds 0,1,2] [--plot PATH]     # every calibration figure
    slmsim validate-sim --detail [--benchmark math500] [--k 1,3,5,9] [--temperature 0.7]

Without ``--detail``: ``experiments.studies.simulator.figures`` (every calibration figure at several seeds,
leave-one-out predictions of the orchestration figures, the temperature table, a plot).

Everything printed here is produced by the simulator (source: sim), graded by the real
graders. It shows, per card: simulated vs public single-model accuracy and its spread
over seeds; per-subject MATH accuracy vs the public per-subject figures; how often two
models give the same wrong answer when both are wrong; majority vote over k samples vs
k; accuracy as a function of sample agreement; and the self-consistency property
(problems a model solves more often than not gain from voting, the others lose).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from actors.backends.sim.backend import SimBackend
from actors.backends.sim.cards import SimCards, load_cards
from actors.backends.sim.world import World
from datasets import grader_for
from datasets.grading.math import canonical_key, fast_equiv
from experiments.studies.simulator.bench import TRIO, FastGrader, accuracy, sim_collaborators
from experiments.studies.simulator.calibrate import (
    SUBJECTS_KEY,
    load_benchmark,
    public_results_path,
    read_yaml,
    solver_request,
)
from protocols.config import (
    AgentForestConfig,
    DebateConfig,
    MavConfig,
    MoAConfig,
    ModelSpec,
    OrchestratorConfig,
    SelfConsistencyConfig,
    SingleConfig,
    SlmMuxConfig,
)
from protocols.messages import CompletionRequest, Problem

# FastGrader moved to bench.py (shared with orch_fit); re-exported for existing importers.
__all__ = ["TRIO", "FastGrader", "orchestration_report", "report"]
BANNER = "=" * 30 + " SIMULATED MODELS (source: sim) - not measurements of real models " + "=" * 30


@dataclass
class Judge:
    """Extracts answers and grades them with the real graders, caching verdicts per (problem, answer).

    ``exact=False`` (the default, for speed) uses the MATH grader's exact fast path only and
    counts a pair it cannot decide without sympy as different; ``undecided`` counts them.
    Simulated wrong answers are built to differ from the reference, and the calibration check
    grades everything fully, so this changes nothing but the run time.
    """

    exact: bool = False
    cache: dict[tuple[str, str], bool] = field(default_factory=dict)
    undecided: int = 0

    async def _equivalent(self, problem: Problem, answer: str) -> bool:
        if problem.answer_format in ("boxed", "free") and not self.exact:
            verdict = fast_equiv(problem.reference, answer)
            if verdict is None:
                self.undecided += 1
            return bool(verdict)
        return await grader_for(problem.answer_format).equivalent(problem, problem.reference, answer)

    async def extract(self, problem: Problem, text: str) -> str | None:
        return await grader_for(problem.answer_format).extract(problem, text)

    async def prefetch(self, problems: Sequence[Problem], rows: Sequence[Sequence[str | None]]) -> None:
        """Grade every distinct (problem, answer) pair concurrently (symbolic checks run in a pool)."""
        todo = {(p.id, a): p for p, row in zip(problems, rows, strict=True) for a in row if a is not None}
        todo = {k: p for k, p in todo.items() if k not in self.cache}
        items = list(todo.items())
        for start in range(0, len(items), 512):
            part = items[start : start + 512]
            verdicts = await asyncio.gather(*(self._equivalent(p, a) for (_, a), p in part))
            for ((pid, a), _), ok in zip(part, verdicts, strict=True):
                self.cache[(pid, a)] = ok

    async def right(self, problem: Problem, answer: str | None) -> bool:
        if answer is None:
            return False
        key = (problem.id, answer)
        if key not in self.cache:
            self.cache[key] = await self._equivalent(problem, answer)
        return self.cache[key]


def group_key(problem: Problem, answer: str) -> str:
    """Answers with the same key are the same answer (numbers and normal forms; no sympy)."""
    return canonical_key(answer) if problem.answer_format in ("boxed", "free") else answer.strip().upper()


async def answers(
    cards: SimCards, card: str, problems: Sequence[Problem], judge: Judge, seed: int, k: int, temperature: float
) -> list[list[str | None]]:
    """``k`` extracted answers per problem (None = abstention) from the sim backend."""
    backend = SimBackend(ModelSpec(name=card), seed, cards)
    out = []
    for p in problems:
        base = solver_request(card, p, seed)
        row = []
        for i in range(k):
            req = CompletionRequest(
                model=card, messages=base.messages, temperature=temperature, sample_index=i, seed=seed, meta=base.meta
            )
            reply = await backend.complete(req)
            row.append(await judge.extract(p, getattr(reply, "text", "")))
        out.append(row)
    await judge.prefetch(problems, out)
    return out


async def majority(problem: Problem, row: Sequence[str | None], judge: Judge) -> tuple[bool, float]:
    """(is the plurality answer right, share of the k samples that gave it); abstentions count in k."""
    votes = Counter(group_key(problem, a) for a in row if a is not None)
    if not votes:
        return False, 0.0
    top_key, n = votes.most_common(1)[0]
    top = next(a for a in row if a is not None and group_key(problem, a) == top_key)
    return await judge.right(problem, top), n / len(row)


def pct(x: float) -> str:
    return f"{100 * x:5.1f}"


async def report(
    benchmark: str = "math500",
    ks: Sequence[int] = (1, 3, 5, 9),
    temperature: float = 0.7,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    names: Sequence[str] | None = None,
    limit: int | None = None,
    exact: bool = False,
) -> str:
    """The whole report as text."""
    cards = load_cards()
    names = list(names or cards.cards)
    problems = load_benchmark(benchmark)[:limit]
    judge = Judge(exact=exact)
    lines = [BANNER, f"benchmark {benchmark}: {len(problems)} problems; cards: {len(names)}", ""]

    # 1. Single-model T=0 accuracy vs the public target, and its spread over seeds.
    lines.append(f"[1] single-model accuracy, T=0 (%): sim at seed 0 vs calibration target; seeds {list(seeds)}")
    lines.append(f"{'card':32} {'sim':>6} {'target':>6} {'diff':>6} {'min':>6} {'max':>6} {'sd':>5}  target source")
    greedy: dict[str, list[str | None]] = {}
    for name in names:
        accs = []
        for seed in seeds:
            rows = await answers(cards, name, problems, judge, seed, 1, 0.0)
            if seed == seeds[0]:
                greedy[name] = [r[0] for r in rows]
            accs.append(sum([await judge.right(p, r[0]) for p, r in zip(problems, rows, strict=True)]) / len(problems))
        t = cards.cards[name].targets.get(benchmark)
        tv = f"{t.value:6.1f}" if t else "     -"
        diff = f"{100 * accs[0] - t.value:+6.1f}" if t else "     -"
        sd = statistics.pstdev(accs) * 100
        lines.append(
            f"{name:32} {pct(accs[0]):>6} {tv} {diff} {pct(min(accs)):>6} {pct(max(accs)):>6} {sd:5.2f}  "
            f"{t.source if t else '-'}"
        )

    # 2. Per-subject MATH accuracy where public per-subject figures exist.
    if benchmark == "math500":
        table = read_yaml(public_results_path())[SUBJECTS_KEY]
        subjects = table["subjects"]
        lines += ["", "[2] per-subject MATH accuracy, T=0 seed 0 (%): sim / public"]
        lines.append(f"{'card':32} " + " ".join(f"{s[:12]:>13}" for s in subjects))
        for name in names:
            cells = []
            for i, s in enumerate(subjects):
                idx = [j for j, p in enumerate(problems) if p.domain == s]
                if not idx:
                    cells.append(f"{'-':>13}")
                    continue
                acc = sum([await judge.right(problems[j], greedy[name][j]) for j in idx]) / len(idx)
                pub = f"{100 * table[name][i]:.0f}" if name in table else "-"
                cells.append(f"{100 * acc:7.0f} /{pub:>4}")
            lines.append(f"{name:32} " + " ".join(cells))

    # 3. Correlated errors: P(same wrong answer | both wrong), T=0 seed 0.
    lines += ["", "[3] P(same wrong answer | both wrong), T=0 seed 0, over model pairs (both answered, both wrong)"]
    values = []
    for a, b in itertools.combinations(names, 2):
        same = both = 0
        for j, p in enumerate(problems):
            x, y = greedy[a][j], greedy[b][j]
            if x is None or y is None or await judge.right(p, x) or await judge.right(p, y):
                continue
            both += 1
            same += group_key(p, x) == group_key(p, y)
        if both >= 10:
            values.append((same / both, a, b, both))
    values.sort()
    if not values:
        lines.append("  (no pair of cards with at least 10 problems both got wrong)")
    else:
        qs = statistics.quantiles([v[0] for v in values], n=4) if len(values) > 1 else [values[0][0]] * 3
        lines.append(
            f"pairs {len(values)}: min {values[0][0]:.2f}  q1 {qs[0]:.2f}  median {qs[1]:.2f}  q3 {qs[2]:.2f}  "
            f"max {values[-1][0]:.2f}   (realistic: roughly 0.3-0.7)"
        )
        extremes = values[:2] + [v for v in values[-2:] if v not in values[:2]]
        for v, a, b, n in extremes:
            lines.append(f"  {a} & {b}: {v:.2f} over {n} problems")

    # 4-6. Sampling: majority vote vs k, agreement vs correctness, self-consistency property.
    kmax = max(ks)
    lines += ["", f"[4] majority vote over k samples at T={temperature}, seed 0 (%; abstentions count in k)"]
    lines.append(f"{'card':32} " + " ".join(f"{'k=' + str(k):>7}" for k in ks))
    bins = [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
    agree_rows, sc_rows = [], []
    world = World(cards)
    for name in names:
        rows = await answers(cards, name, problems, judge, 0, kmax, temperature)
        accs = []
        for k in ks:
            accs.append(sum([(await majority(p, r[:k], judge))[0] for p, r in zip(problems, rows, strict=True)]))
        lines.append(f"{name:32} " + " ".join(f"{pct(a / len(problems)):>7}" for a in accs))
        # Agreement bins (k = kmax) and the self-consistency split by the true per-sample p.
        per_bin: dict[int, list[bool]] = {i: [] for i in range(len(bins))}
        low = [0.0, 0.0, 0]
        high = [0.0, 0.0, 0]
        card = cards.card(name)
        for p, r in zip(problems, rows, strict=True):
            ok, share = await majority(p, r, judge)
            for i, (lo, hi) in enumerate(bins):
                if lo <= share < hi:
                    per_bin[i].append(ok)
            single = sum([await judge.right(p, a) for a in r]) / len(r)
            pt = world.draw(card, world.facts(p), temperature, "validate").p
            side = high if pt > 0.5 else low
            side[0] += single
            side[1] += ok
            side[2] += 1
        agree_rows.append((name, per_bin))
        sc_rows.append((name, low, high))

    lines += ["", f"[5] accuracy of the majority answer by agreement (its share of {kmax} samples), T={temperature}"]
    lines.append(f"{'card':32} " + " ".join(f"{f'[{lo:.1f},{min(hi, 1):.1f}]':>16}" for lo, hi in bins))
    for name, per_bin in agree_rows:
        cells = [
            f"{pct(sum(v) / len(v)) if v else '    -'} (n={len(v):3d})".rjust(16) for v in (per_bin[i] for i in per_bin)
        ]
        lines.append(f"{name:32} " + " ".join(cells))

    lines += [
        "",
        f"[6] self-consistency property at T={temperature}: mean single-sample accuracy -> majority@{kmax} (%),",
        "    problems split by the simulator's true per-sample P(correct) (gain where p > 0.5, loss where p < 0.5)",
    ]
    lines.append(f"{'card':32} {'p<=0.5: single -> vote':>26} {'p>0.5: single -> vote':>26}")
    for name, low, high in sc_rows:

        def cell(side: list[float]) -> str:
            if not side[2]:
                return f"{'-':>26}"
            a, b = side[0] / side[2], side[1] / side[2]
            return f"{pct(a)} -> {pct(b)} ({'+' if b >= a else '-'}, n={int(side[2])})".rjust(26)

        lines.append(f"{name:32} {cell(low)} {cell(high)}")
    mode = "full (sympy)" if exact else f"exact fast path; {judge.undecided} undecided pairs counted as different"
    lines += ["", f"grading: real graders, {mode}", BANNER]
    return "\n".join(lines)


async def orchestration_report(benchmark: str = "math500", seed: int = 0, limit: int | None = None) -> str:
    """SLM-MUX and its baselines on the SLM-MUX paper's trio, run in-process on sim models.

    These are *predictions* of the simulator: no orchestration result was used to build it.
    """
    problems = load_benchmark(benchmark)[:limit]
    # SLM-MUX breaks confidence ties by validation accuracy; the cards' single-model targets stand in.
    cards = load_cards()
    tie_break = {n: cards.card(n).targets[benchmark].value / 100 for n in TRIO if benchmark in cards.card(n).targets}
    collab = sim_collaborators(None, seed)
    configs: dict[str, OrchestratorConfig] = {f"single {m}": SingleConfig(model=m) for m in TRIO}
    configs |= {
        "self-consistency Gemma k=5": SelfConsistencyConfig(model=TRIO[2], k=5),
        "SLM-MUX trio k=3": SlmMuxConfig(models=TRIO, k=3, validation_accuracy=tie_break),
        "Agent Forest trio k=3": AgentForestConfig(models=TRIO, k=3),
        "MoA trio -> Gemma": MoAConfig(proposers=TRIO, aggregator=TRIO[2]),
        "LLM-Debate trio, 2 rounds": DebateConfig(models=TRIO, rounds=2),
        "MAV trio / trio": MavConfig(proposers=TRIO, verifiers=TRIO),
    }
    lines = [f"[7] orchestration on {benchmark} ({len(problems)} problems), seed {seed}: SIMULATED predictions"]
    for label, config in configs.items():
        lines.append(f"  {label:32} {pct(await accuracy(config, problems, collab) / 100.0)}")
    return "\n".join(lines)
