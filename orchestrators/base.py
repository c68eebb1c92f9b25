"""What every orchestrator receives and returns.

An orchestrator is ``async def f(problem, config, collab) -> Outcome``. It gets its
collaborators passed in and never builds actors, reads files or imports ray, so the
same code runs on Ray handles and on in-process fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from protocols.interfaces import Grader, Model
from protocols.messages import Failure, Frozen, TraceEvent


@dataclass(frozen=True)
class Collaborators:
    """Models by name, the benchmark's grader, and run-wide identifiers.

    ``tools`` holds agent handles (hierarchical stacking); ``extras`` anything an
    orchestrator needs beyond models and tools, keyed by a documented name.
    """

    models: Mapping[str, Model]
    grader: Grader
    run_id: str = "run"
    seed: int = 0
    tools: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)


class Outcome(Frozen):
    """An orchestrator's answer to one problem, before grading.

    The runner grades ``final_text`` with the benchmark grader; ``answer`` is the
    orchestrator's own reading of it (e.g. the winning vote), kept for the record.
    ``error`` is set when no answer could be produced; it is never graded as one.
    """

    final_text: str | None
    answer: str | None = None
    trace: tuple[TraceEvent, ...] = ()
    details: dict[str, Any] = Field(default_factory=dict)
    error: Failure | None = None
