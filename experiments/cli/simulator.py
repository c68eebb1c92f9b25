"""The simulator's commands: ``calibrate`` fits its cards, ``validate-sim`` reports how they behave."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from actors.backends.sim.cards import CARDS_PATH, load_cards
from experiments.cli.common import parse, parser_for
from experiments.studies.simulator import figures, pool_fit, validate
from experiments.studies.simulator.calibrate import TOLERANCE, check
from experiments.studies.simulator.calibrate import calibrate as fit_cards


def calibrate(argv: Sequence[str] | None = None) -> int:
    """``slmsim calibrate [--check | --from POOL_DIR ...]``."""
    parser = parser_for("calibrate", "Fit simulated model cards to public single-model accuracies.")
    parser.add_argument("--check", action="store_true", help="verify the committed cards instead of fitting")
    parser.add_argument(
        "--from",
        dest="pool",
        nargs="+",
        default=None,
        help="fit to recorded pool directories instead (studies.simulator.pool_fit; e.g. one per temperature)"
        " and report held-out prediction errors",
    )
    parser.add_argument("--out", default=None, help="with --from: where to write cards.yaml and report.json")
    parser.add_argument("--holdout", default="0.5", help="with --from: share of the pool's problems held out")
    args = parse(parser, argv)
    if args.pool is not None:
        return pool_fit.main([*args.pool, "--holdout", args.holdout, *(["--out", args.out] if args.out else [])])
    if not args.check:
        asyncio.run(fit_cards())
        print(f"wrote {CARDS_PATH}")
    rows = asyncio.run(check(load_cards()))
    print("SIMULATED (source: sim) single-model T=0 accuracy vs calibration target, seed 0")
    print(f"{'card':34} {'bench':8} {'sim':>6} {'target':>6} {'diff':>6}  source")
    bad = 0
    for r in rows:
        diff = r.sim - r.target
        flag = "" if abs(diff) <= TOLERANCE else "  <-- OFF"
        bad += bool(flag)
        print(f"{r.card:34} {r.bench:8} {r.sim:6.1f} {r.target:6.1f} {diff:+6.1f}  {r.source}{flag}")
    print("gpqa*: expected accuracy over GPQA-Diamond's domain structure (the questions are not shipped)")
    if bad:
        print(f"{bad} row(s) off by more than {TOLERANCE} points", file=sys.stderr)
        return 1
    print(f"all within {TOLERANCE} points")
    return 0


def validate_sim(argv: Sequence[str] | None = None) -> int:
    """``slmsim validate-sim [--detail ...]``: every calibration figure, or the per-card report."""
    parser = parser_for("validate-sim", "Print the simulator's validation report.")
    parser.add_argument("--benchmark", default="math500", choices=["math500", "gsm8k"])
    parser.add_argument("--k", default="1,3,5,9", help="comma-separated sample counts for majority vote")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds for the accuracy spread (first = reference)")
    parser.add_argument("--cards", default="", help="comma-separated card names (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--exact", action="store_true", help="settle undecided MATH pairs with sympy (slow)")
    parser.add_argument(
        "--orchestration", action="store_true", help="also run SLM-MUX and its baselines on the SLM-MUX trio"
    )
    parser.add_argument("--detail", action="store_true", help="the per-card report (sections [1]-[6])")
    parser.add_argument("--plot", type=Path, default=Path("runs/validate_sim/figures.png"))
    parser.add_argument("--quick", action="store_true", help="figures: single-model rows of the SLM-MUX trio only")
    args = parse(parser, argv)
    if not args.detail:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds != "0,1,2,3,4" else [0, 1, 2]
        return figures.main(seeds, args.plot, args.quick)
    text = asyncio.run(
        validate.report(
            benchmark=args.benchmark,
            ks=[int(x) for x in args.k.split(",")],
            temperature=args.temperature,
            seeds=[int(x) for x in args.seeds.split(",")],
            names=[c for c in args.cards.split(",") if c] or None,
            limit=args.limit,
            exact=args.exact,
        )
    )
    print(text)
    if args.orchestration:
        print(asyncio.run(validate.orchestration_report(args.benchmark, limit=args.limit)))
        print(validate.BANNER)
    return 0
