"""The collaborator interfaces orchestrators are written against.

Production passes Ray-backed adapters, unit tests pass in-process fakes; the
orchestrator cannot tell them apart.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from protocols.messages import Completion, CompletionRequest, Failure, Grade, Problem


@runtime_checkable
class Backend(Protocol):
    """Anything that turns a request into one completion or a typed failure.

    Model backends (sim, openai, replay) and their wrappers (retry, rate limit,
    recording) all have this shape, so they compose. A backend never raises for
    a model-side problem: it returns a ``Failure``.
    """

    async def complete(self, request: CompletionRequest) -> Completion | Failure: ...


class Model(Protocol):
    """An orchestrator's handle on one named model (a Ray actor or a local backend)."""

    async def complete(self, request: CompletionRequest) -> Completion | Failure: ...


class Grader(Protocol):
    """Answer extraction, equivalence and grading for one benchmark's answer format.

    Implementations run CPU-heavy work (sympy, math-verify) off the event loop
    with a timeout, hence the async methods.
    """

    async def extract(self, problem: Problem, text: str) -> str | None:
        """The final answer in ``text`` in canonical written form, or None if there is none."""
        ...

    async def equivalent(self, problem: Problem, a: str, b: str) -> bool:
        """Whether two extracted answers are the same answer (``0.5`` vs ``\\frac12``)."""
        ...

    async def grade(self, problem: Problem, text: str) -> Grade:
        """Extract the answer from ``text`` and compare it with ``problem.reference``."""
        ...
