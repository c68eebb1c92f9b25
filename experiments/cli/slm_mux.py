"""The SLM-MUX study commands: ``pool`` draws the sample pool, ``sweep`` and ``select`` read it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from experiments.cli.common import add_config, parse, parser_for
from experiments.runtime.errors import guarded
from experiments.runtime.lock import hold
from experiments.runtime.preflight import check_run
from experiments.studies.slm_mux import selection, sweep
from experiments.studies.slm_mux.config import load_study
from experiments.studies.slm_mux.sample_pool import POOL_FILE, draw_pool, pool_run_config, read_pool


def pool(argv: Sequence[str] | None = None) -> int:
    """``slmsim pool CONFIG [key=value ...]``: draw (or resume) the pool and print what it holds."""
    parser = parser_for("pool", "Draw a cached sample pool for sweeps and model selection.")
    add_config(parser, "pool.k=5 dataset.limit=50")
    args = parse(parser, argv)

    def body() -> int:
        study = load_study(args.config, args.overrides)
        for spec in study.models:
            check_run(pool_run_config(study, spec))
        with hold(study.run.out_dir, "slmsim pool"):
            meta = asyncio.run(draw_pool(study))
        print(json.dumps(meta.model_dump(mode="json"), indent=2))
        where = study.run.out_dir / POOL_FILE
        print(f"pool: {meta.n_problems} problems x {len(meta.models)} models x k={meta.k} -> {where}")
        return 0

    return guarded("pool", body)


def pool_merge(argv: Sequence[str] | None = None) -> int:
    """``slmsim pool-merge OUT POOL POOL [...]``: one pool of every model of pools drawn apart."""
    parser = parser_for("pool-merge", "Merge sample pools of the same problems drawn apart (no model calls).")
    parser.add_argument("out", type=Path, help="directory of the merged pool.jsonl + pool_meta.json")
    parser.add_argument("pools", type=Path, nargs="+", help="pool directories, merged in this order of models")
    args = parse(parser, argv)

    def body() -> int:
        from experiments.studies.slm_mux.pool_merge import merge

        meta = merge(args.pools, args.out)
        print(json.dumps(meta.model_dump(mode="json"), indent=2))
        print(f"pool: {meta.n_problems} problems x {len(meta.models)} models x k={meta.k} -> {args.out / POOL_FILE}")
        return 0

    return guarded("pool-merge", body)


def sweep_command(argv: Sequence[str] | None = None) -> int:
    """``slmsim sweep CONFIG [key=value ...]``: sweep k and models over the stored pool."""
    parser = parser_for("sweep", "Test-time scaling sweeps from a sample pool (no model calls).")
    add_config(parser, "sweep.k_values=[1,3,5]")
    args = parse(parser, argv)

    def body() -> int:
        study = load_study(args.config, args.overrides)
        report = sweep.run_sweep(read_pool(study.run.out_dir, study), study)
        paths = sweep.write_report(report, study.run.out_dir)
        print(sweep.render(report))
        print("written: " + ", ".join(str(p) for p in paths))
        return 0

    return guarded("sweep", body)


def select(argv: Sequence[str] | None = None) -> int:
    """``slmsim select CONFIG [key=value ...]``: rank subsets of the pool's models."""
    parser = parser_for("select", "SLM-MUX model selection search over a sample pool.")
    add_config(parser, "selection.k=2")
    args = parse(parser, argv)

    def body() -> int:
        study = load_study(args.config, args.overrides)
        report = selection.search(read_pool(study.run.out_dir, study), study)
        paths = selection.write_report(report, study.run.out_dir, study.selection.top)
        print(selection.render(report, study.selection.top))
        print("written: " + ", ".join(str(p) for p in paths))
        return 0

    return guarded("select", body)
