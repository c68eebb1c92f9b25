"""A progress bar showing done/total, accuracy so far, tokens, cost and errors."""

from __future__ import annotations

import sys

from protocols.messages import ProblemResult


class Progress:
    """Wraps tqdm; writes to stderr so stdout stays a clean table."""

    def __init__(self, total: int, done: list[ProblemResult], label: str, enabled: bool = True) -> None:
        self.correct = sum(r.correct for r in done)
        self.errors = sum(r.error is not None for r in done)
        self.tokens = sum(r.totals.usage.total_tokens for r in done)
        self.cost = sum(r.totals.cost_usd for r in done)
        self.n = len(done)
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=len(done), desc=label, file=sys.stderr, dynamic_ncols=True)
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
