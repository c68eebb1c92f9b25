"""A progress bar showing done/total, accuracy so far, tokens, cost and errors."""

from __future__ import annotations

import sys

from experiments.runtime.results import Tally
from protocols.messages import ProblemResult


class Progress:
    """Wraps tqdm; writes to stderr so stdout stays a clean table."""

    def __init__(self, total: int, done: Tally, label: str, enabled: bool = True) -> None:
        """``done``: the totals of the results already on disk (a resumed run starts from them)."""
        self.correct = done.correct
        self.errors = sum(done.errors.values())
        self.tokens = done.usage.total_tokens
        self.cost = done.cost_usd
        self.n = done.n
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done.n, desc=label, file=sys.stderr, dynamic_ncols=True)
            self._refresh()

    def _refresh(self) -> None:
        if self._bar is None:
            return
        acc = self.correct / self.n if self.n else 0.0
        self._bar.set_postfix_str(
            f"acc={acc:.3f} tok={self.tokens:,} cost=${self.cost:.4f} err={self.errors}", refresh=False
        )

    def update(self, result: ProblemResult) -> None:
        self.n += 1
        self.correct += result.correct
        self.errors += result.error is not None
        self.tokens += result.totals.usage.total_tokens
        self.cost += result.totals.cost_usd
        if self._bar is not None:
            self._refresh()
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
