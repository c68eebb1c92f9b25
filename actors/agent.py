"""A stacking agent as an actor whose tools are other actors, and the tool adapters it uses.

``AgentActor`` is a plain class (tested in-process); ``RemoteTool.spawn`` makes it remote, the
one place that does (``experiments.runtime.agent_tree`` builds a structure's tree with it).
Its ReAct loop and the raw-model tool call are injected as module-level functions
(``orchestrators.react.react_loop`` / ``ask_model``), because actors may not import
orchestrators; a module-level function pickles by reference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from protocols.config import StackingConfig
from protocols.interfaces import Grader, Model
from protocols.messages import Problem
from protocols.tools import Tool, ToolAnswer

GraderFactory = Callable[[str], Grader]
"""Returns the grader of an answer format (``datasets.grader_for`` in production)."""


class ReactLoop(Protocol):
    """The shape of ``orchestrators.react.react_loop``."""

    async def __call__(
        self,
        problem: Problem,
        query: str,
        *,
        name: str,
        layer: int,
        model_name: str,
        model: Model,
        tools: Mapping[str, Tool],
        grader: Grader,
        run_id: str,
        seed: int,
        config: StackingConfig,
    ) -> ToolAnswer: ...


class AskModel(Protocol):
    """The shape of ``orchestrators.react.ask_model``."""

    async def __call__(
        self,
        problem: Problem,
        query: str,
        *,
        name: str,
        model: Model,
        grader: Grader,
        run_id: str,
        seed: int,
        config: StackingConfig,
    ) -> ToolAnswer: ...


class _Graders:
    """One grader per answer format, built on first use in the process that grades."""

    def __init__(self, factory: GraderFactory) -> None:
        self.factory = factory
        self._by_format: dict[str, Grader] = {}

    def __call__(self, answer_format: str) -> Grader:
        if answer_format not in self._by_format:
            self._by_format[answer_format] = self.factory(answer_format)
        return self._by_format[answer_format]

    def __getstate__(self) -> dict[str, Any]:
        # Graders may hold pools or locks; only the factory crosses process boundaries.
        return {"factory": self.factory, "_by_format": {}}


class ModelTool:
    """A raw model (``X_0``) answering an agent's queries as a tool, one solver request each."""

    def __init__(
        self,
        name: str,
        model: Model,
        ask_model: AskModel,
        grader_factory: GraderFactory,
        config: StackingConfig,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.model = model
        self.ask_model = ask_model
        self.graders = _Graders(grader_factory)
        self.config = config
        self.seed = seed

    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        return await self.ask_model(
            problem,
            query,
            name=self.name,
            model=self.model,
            grader=self.graders(problem.answer_format),
            run_id=run_id,
            seed=self.seed,
            config=self.config,
        )


class AgentActor:
    """One agent of a structure: an orchestrating model, tools by name, and a ReAct loop.

    With ``config.reuse_answers`` (search only) an answer to the same (problem id,
    query) is computed once and served again marked ``reused``; answers are keyed by
    the problem id, so an answer is never reused for a different problem.
    """

    def __init__(
        self,
        name: str,
        layer: int,
        model_name: str,
        model: Model,
        tools: Mapping[str, Tool],
        loop: ReactLoop,
        grader_factory: GraderFactory,
        config: StackingConfig,
        seed: int = 0,
    ) -> None:
        if not tools:
            raise ValueError(f"agent {name!r} needs at least one tool")
        self.name = name
        self.layer = layer
        self.model_name = model_name
        self.model = model
        self.tools = dict(tools)
        self.loop = loop
        self.graders = _Graders(grader_factory)
        self.config = config
        self.seed = seed
        self._answers: dict[tuple[str, str], asyncio.Future[ToolAnswer]] = {}
        self._asked = 0

    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        """Answer ``query`` about ``problem`` by running the ReAct loop over this agent's tools."""
        self._asked += 1
        if not self.config.reuse_answers:
            return await self._run(problem, query, run_id)
        key = (problem.id, query)
        pending = self._answers.get(key)
        if pending is not None:
            got = await asyncio.shield(pending)
            if got.error is None:
                return got.model_copy(update={"reused": True})
        future: asyncio.Future[ToolAnswer] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        try:
            got = await self._run(problem, query, run_id)
        except BaseException as exc:
            self._answers.pop(key, None)
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        future.set_result(got)
        if got.error is not None:
            self._answers.pop(key, None)  # a failure is retried, never served again
        return got

    async def _run(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        return await self.loop(
            problem,
            query,
            name=self.name,
            layer=self.layer,
            model_name=self.model_name,
            model=self.model,
            tools=self.tools,
            grader=self.graders(problem.answer_format),
            run_id=run_id,
            seed=self.seed,
            config=self.config,
        )

    async def stats(self) -> dict[str, Any]:
        """Counters for reports: queries asked and distinct (problem, query) answers cached."""
        return {"name": self.name, "asked": self._asked, "cached": len(self._answers)}


class RemoteTool:
    """The ``Tool`` interface over an agent actor's handle (awaits the ref, never ``ray.get``)."""

    def __init__(self, handle: Any, name: str = "agent") -> None:
        self.handle = handle
        self.name = name

    @classmethod
    def spawn(cls, actor_name: str, options: Mapping[str, Any], *args: Any, name: str = "agent") -> RemoteTool:
        """A named ``AgentActor(*args)`` (the existing one if an actor of that name is alive)."""
        import ray

        handle = ray.remote(AgentActor).options(name=actor_name, get_if_exists=True, **options).remote(*args)
        return cls(handle, name)

    def shutdown(self) -> None:
        """End the agent actor (while others hold its name it would otherwise live on)."""
        import ray

        ray.kill(self.handle)

    async def ask(self, problem: Problem, query: str, run_id: str) -> ToolAnswer:
        return await self.handle.ask.remote(problem, query, run_id)  # type: ignore[no-any-return]
