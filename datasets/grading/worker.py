"""A symbolic-check worker process: JSON lines in (gold, pred, timeout), JSON lines out (verdict).

Started by ``SymbolicChecker`` as ``python -m datasets.grading.worker``. Its checks run in
its main thread, where the CPU-time budget's signal can interrupt them. It prints ``ready``
once its imports are done.
"""

from __future__ import annotations

import json
import sys

from datasets.grading.symbolic import SymbolicResult, symbolic_check


def main() -> None:
    symbolic_check("1", "1")  # import sympy and math-verify before saying ready
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = symbolic_check(request["gold"], request["pred"], float(request["timeout"]))
        except Exception as exc:  # keep serving: one odd check must not take the worker down
            result = SymbolicResult("unparsable", f"{type(exc).__name__}: {exc}"[:200])
        print(json.dumps({"verdict": result.verdict, "detail": result.detail}), flush=True)


if __name__ == "__main__":
    main()
