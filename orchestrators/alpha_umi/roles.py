"""How the alpha-UMi code asks a role's model for text, and keeps every call in the trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from orchestrators.alpha_umi.prompts import SEP
from protocols.alpha_umi import AgentSpec
from protocols.interfaces import Model
from protocols.messages import CallRecord, Completion, CompletionRequest, Failure, RequestMeta, TraceEvent, Usage

RoleName = Literal["planner", "caller", "summarizer", "backbone"]


class Context(Protocol):
    """What a request is about: the task id and its tools (a static step or a loop task)."""

    @property
    def task_id(self) -> str: ...

    @property
    def tool_names(self) -> tuple[str, ...]: ...


class RoleCaller:
    """Sends one role's prompt to that role's model and records the call; one per step or task.

    The backbone of the single-LLM variant is asked with ``RequestMeta.role="planner"`` and
    ``extra["format"]="backbone"`` (the simulator writes the merged thought + call/conclusion).
    ``gold`` goes to ``meta.extra["gold_next"]``: real backends ignore it, the simulator uses it.
    A failed call yields ``""`` (read as ``none`` by the parsers, as a blank generation) and is
    kept in ``failures``. ``shots`` (per role) is text put before the prompt: worked examples for base models.
    """

    def __init__(
        self,
        models: Mapping[str, Model],
        agent: AgentSpec,
        *,
        seed: int = 0,
        run_id: str | None = None,
        stop: tuple[str, ...] = (SEP,),
        shots: Mapping[str, str] | None = None,
    ) -> None:
        self.models = models
        self.agent = agent
        self.seed = seed
        self.run_id = run_id
        self.stop = stop
        self.shots = dict(shots or {})
        self.trace: list[TraceEvent] = []
        self.failures: list[Failure] = []
        self.calls = 0
        self.usage: dict[str, Usage] = {}

    def model_of(self, role: RoleName) -> str:
        name = self.agent.backbone if role == "backbone" else getattr(self.agent, role)
        if name is None:
            raise ValueError(f"no model for role {role!r}")
        return str(name)

    async def ask(self, role: RoleName, prompt: str, ctx: Context, *, gold: str = "", step: int = 0) -> str:
        """The text of one completion ("" on failure)."""
        name = self.model_of(role)
        extra: dict[str, Any] = {"gold_next": gold}
        if role == "backbone":
            extra["format"] = "backbone"
        request = CompletionRequest(
            model=name,
            prompt=self.shots.get(role, "") + prompt,
            temperature=self.agent.temperature,
            max_tokens=self.agent.max_tokens,
            stop=self.stop,
            seed=self.seed,
            meta=RequestMeta(
                problem_id=ctx.task_id,
                run_id=self.run_id,
                role="planner" if role == "backbone" else role,
                tools=ctx.tool_names,
                step=step,
                extra=extra,
            ),
        )
        reply = await self.models[name].complete(request)
        self.calls += 1
        self.trace.append(CallRecord(model=name, role=request.meta.role, label=role, reply=reply))
        self.usage[role] = self.usage.get(role, Usage()) + reply.usage
        if isinstance(reply, Failure):
            self.failures.append(reply)
            return ""
        assert isinstance(reply, Completion)
        return reply.text
