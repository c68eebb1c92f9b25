"""A symbolic-check worker process: JSON lines in (gold, pred, timeout), JSON lines out (verdict).

Started by ``SymbolicChecker`` as a script, ``python -P .../datasets/grading/worker.py``,
which loads ``symbolic.py`` by its path: checking two strings needs sympy and
math-verify, not the ``datasets`` package (its loaders, and the pydantic models of
``protocols``), whose import was ~0.3 s of CPU, a fifth of a worker's start, paid once
per runner process (``-P``: this directory, which holds a ``math.py``, must not shadow
the standard library's). Its checks run in its main thread, where the CPU-time budget's
signal can interrupt them. It prints ``ready`` once its imports are done.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType


def _symbolic() -> ModuleType:
    if __package__:  # imported as datasets.grading.worker
        from datasets.grading import symbolic

        return symbolic
    spec = importlib.util.spec_from_file_location("slmsim_symbolic", Path(__file__).with_name("symbolic.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    symbolic = _symbolic()
    symbolic.symbolic_check("1", "1")  # import sympy and math-verify before saying ready
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = symbolic.symbolic_check(request["gold"], request["pred"], float(request["timeout"]))
        except Exception as exc:  # keep serving: one odd check must not take the worker down
            result = symbolic.SymbolicResult("unparsable", f"{type(exc).__name__}: {exc}"[:200])
        print(json.dumps({"verdict": result.verdict, "detail": result.detail}), flush=True)


if __name__ == "__main__":
    main()
