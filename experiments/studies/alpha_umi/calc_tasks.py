"""Generated arithmetic tasks in the alpha-UMi record format, solved for real by the sympy calculator.

Each record has the calculator as its only tool and a gold trajectory (plan, call, result,
conclusion) computed with the same calculator, so the simulator has a gold turn to follow
and a real model's run can be checked for the exact result.
"""

from __future__ import annotations

import json
import random
from typing import Any

from actors import calculator


def _expression(rng: random.Random) -> str:
    a, b, c = rng.randint(12, 999), rng.randint(12, 999), rng.randint(2, 60)
    return rng.choice([f"{a} * {b} + {c}", f"({a} + {b}) * {c}", f"{a} * {c} - {b}", f"{a} ** 2 - {b}"])


def calculator_records(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` tasks, the same ones for the same seed."""
    rng = random.Random(f"calculator-tasks-{seed}")
    records = []
    for _ in range(count):
        expression = _expression(rng)
        result = calculator.calculate(expression)
        call = json.dumps({"expression": expression})
        question = f"Please compute {expression} exactly and tell me the result."
        records.append(
            {
                "tools": [calculator.SPEC],
                "instruction": question,
                "expected": result,
                "conversations": [
                    {"from": "user", "value": question},
                    {
                        "from": "assistant",
                        "value": f"The user wants the exact value of {expression}; I will call the calculator. "
                        "Next: caller.",
                    },
                    {"from": "caller", "value": f"Action: calculator\nAction Input: {call}"},
                    {"from": "observation", "value": calculator.run(call)},
                    {"from": "assistant", "value": "The calculator returned the result. Next: conclusion."},
                    {"from": "conclusion", "value": f"{expression} = {result}"},
                ],
            }
        )
    return records
