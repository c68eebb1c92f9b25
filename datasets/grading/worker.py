"""A symbolic-check worker process: JSON lines in (gold, pred, timeout), JSON lines out (verdict).

Started by ``SymbolicChecker`` as ``python -m datasets.grading.worker``. Its checks run in
its main thread, where math-verify's ``signal.alarm`` timeouts work. It prints ``ready``
once its imports are done.
"""

from __future__ import annotations

import json
import sys

from datasets.grading.symbolic import symbolic_check


def main() -> None:
    symbolic_check("1", "1")  # import sympy and math-verify before saying ready
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        result = symbolic_check(request["gold"], request["pred"], int(request["timeout"]))
        print(json.dumps({"verdict": result.verdict, "detail": result.detail}), flush=True)


if __name__ == "__main__":
    main()
