"""The hierarchical tool stacking command: ``stack-search``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from experiments.cli.common import add_config, parse, parser_for
from experiments.runtime.errors import guarded
from experiments.studies.stacking.config import load_search_config
from experiments.studies.stacking.search import run_search_async


def stack_search(argv: Sequence[str] | None = None) -> int:
    """``slmsim stack-search CONFIG [key=value ...]``: warm-up, stacking search, test of the winner."""
    parser = parser_for("stack-search", "Hierarchical tool stacking: warm-up, stacking search, test.")
    add_config(parser, "search.train_data_number=40 search.fixed_structure='Agent[A_0, B_0]@A'")
    args = parse(parser, argv)

    def body() -> int:
        config = load_search_config(args.config, args.overrides)
        report = asyncio.run(run_search_async(config))
        out = config.run.out_dir
        for name in ("warmup.md", *sorted(p.name for p in out.glob("stacking_layer_*.md")), "test_summary.md"):
            if (out / name).exists():
                print((out / name).read_text())
        print(f"chosen structure: {report['chosen_structure']}  ({report.get('stop_reason')})")
        print(f"search wall {report['wall_s']:.1f}s vs sum of its parts {report['sum_of_parts_s']:.1f}s")
        print(f"search directory: {out}")
        return 0

    return guarded("stack-search", body)
