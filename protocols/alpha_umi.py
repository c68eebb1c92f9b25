"""alpha-UMi: the run configuration, the tool-environment messages and the static-evaluation summary.

Additive to ``protocols.config`` / ``protocols.messages``: an alpha-UMi run is its own
experiment kind (tool-use tasks, not graded problems), but it reuses ``ModelSpec``,
``RunSpec`` and ``StoreSpec`` and writes ``ProblemResult`` lines, so the run directory
contract (config.yaml, results.jsonl, summary.json, resume) is the same as every run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from protocols.config import ModelSpec, RunSpec, StoreSpec, Strict, existing_path, model_named
from protocols.messages import Frozen, Usage

Decision = Literal["caller", "conclusion", "give up"]
Plan = Literal["call", "finish", "give up"]
"""The original evaluator's names for the three decisions (``evaluate-multi_agent.py``)."""
Predictor = Literal["models", "gold", "first_tool_empty", "always_conclude"]


class ToolDataSpec(Strict):
    """Which tool-use tasks: a file of alpha-UMi ToolBench records."""

    name: Literal["toolbench", "toolalpaca", "calculator"] = "toolbench"
    """Loop only: ``toolalpaca`` (simulated-API set, replayed from ToolAlpaca-13B's recorded run),
    ``calculator`` (generated arithmetic tasks that the sympy calculator solves for real)."""
    path: Path | None = None
    """None: the shipped ``alpha_umi_toolbench/out_of_domain.json`` (``toolalpaca/eval_simulated.json``)."""
    count: int = Field(default=20, ge=1, le=10000)
    """calculator: how many tasks to generate (seeded by the run seed)."""
    limit: int | None = Field(default=None, ge=1)
    """Tasks (not steps) to use, after ``offset``."""
    offset: int = Field(default=0, ge=0)

    _exists = field_validator("path")(existing_path)


class AgentSpec(Strict):
    """The agent: three roles (alpha-UMi, or "multi-LLM one-stage" when they share a model) or one backbone."""

    variant: Literal["multi", "single"] = "multi"
    planner: str | None = None
    caller: str | None = None
    summarizer: str | None = None
    backbone: str | None = None
    """single: the one model that plans, calls and concludes (prompt ``toolbench_backbone``)."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """The original's static evaluation decodes greedily; its real-time agent samples at 0.5."""
    max_tokens: int = Field(default=512, gt=0)
    """512 new tokens, as in the original's real-time agent."""
    no_decision: Literal["caller", "summarizer"] = "caller"
    """A planner output with no ``Next:`` token goes to the caller (the ToolBench code) or the summarizer
    (modelscope-agent's behaviour)."""
    handoff_prefix: Literal["planner", "assistant"] = "planner"
    """The prefix of the planner turn in the caller's/summarizer's history: ``planner:`` in the original's static
    pipeline, ``assistant:`` in its training data and real-time agent."""
    shots: int = Field(default=0, ge=0, le=4)
    """Worked examples put before each role's prompt (for base models; the released checkpoints need none)."""
    max_steps: int = Field(default=8, ge=1, le=64)
    """Loop: planner steps per task (the recorded trajectories have at most 5 calls)."""
    max_model_calls: int = Field(default=24, ge=1, le=512)
    chains: int = Field(default=1, ge=1, le=8)
    """Loop: DFSDT-style retries. After a chain gives up or uses its ``chain_steps``, a new chain starts from
    the instruction with the original diversity prompt listing the calls tried (the original searches with
    width 2 and at most 4 planner steps per chain). 1 = one chain of ``max_steps``."""
    chain_steps: int = Field(default=4, ge=1, le=64)
    observation_chars: int = Field(default=1024, ge=16)
    """Observations are cut to this many characters, as in the original (``[:1024]``)."""

    @model_validator(mode="after")
    def _roles(self) -> AgentSpec:
        if self.variant == "multi":
            missing = [r for r in ("planner", "caller", "summarizer") if getattr(self, r) is None]
            if missing:
                raise ValueError(f"agent: variant 'multi' needs model names for {missing}")
        elif self.backbone is None:
            raise ValueError("agent: variant 'single' needs 'backbone'")
        return self

    @property
    def model_names(self) -> tuple[str, ...]:
        names = (self.backbone,) if self.variant == "single" else (self.planner, self.caller, self.summarizer)
        return tuple(dict.fromkeys(n for n in names if n is not None))


class EnvSpec(Strict):
    """The loop's tool world: replay recorded observations, plus real local tools."""

    local_tools: tuple[Literal["calculator"], ...] = ()
    """Real tools added to every task's tool list (a deviation from the recorded prompts, so off by default)."""


class AlphaUmiConfig(Strict):
    """One alpha-UMi run: static (teacher-forced, one sample per gold planner step) or the loop (end to end)."""

    name: str = "alpha_umi"
    seed: int = 0
    mode: Literal["static", "loop"] = "static"
    predictor: Predictor = "models"
    """static: ``models`` asks the agent's models; the others are reference predictors (no model calls)."""
    dataset: ToolDataSpec = Field(default_factory=ToolDataSpec)
    models: tuple[ModelSpec, ...] = ()
    agent: AgentSpec
    env: EnvSpec = Field(default_factory=EnvSpec)
    run: RunSpec = Field(default_factory=lambda: RunSpec(out_dir=Path("runs/alpha_umi")))
    store: StoreSpec = Field(default_factory=StoreSpec)

    @model_validator(mode="after")
    def _known(self) -> AlphaUmiConfig:
        if self.mode == "static" and self.dataset.name != "toolbench":
            raise ValueError("the static evaluation needs dataset 'toolbench' (recorded planner steps)")
        if self.predictor != "models" and self.mode != "static":
            raise ValueError(f"predictor {self.predictor!r} exists only in mode 'static'")
        if self.predictor == "models":
            names = [m.name for m in self.models]
            missing = [n for n in self.agent.model_names if n not in names]
            if missing:
                raise ValueError(f"agent refers to unknown model(s) {missing}; known: {names}")
        return self

    def model(self, name: str) -> ModelSpec:
        return model_named(self.models, name)


# --- the tool environment ------------------------------------------------------


class ToolCall(Frozen):
    """A call the caller asked for: the tool name and its arguments exactly as written."""

    kind: Literal["tool_call_request"] = "tool_call_request"
    task_id: str
    tool: str
    action_input: str


ObservationStatus = Literal["recorded", "no_recording", "hallucinated", "bad_arguments", "local", "tool_error"]


class Observation(Frozen):
    """The environment's answer to a ``ToolCall``; ``status`` says how it was produced.

    - ``recorded``: a recorded call with the same name and (normalised) arguments; ``text`` is its output.
    - ``no_recording``: a known tool, arguments never recorded: counted, ``text`` says so to the agent.
    - ``hallucinated``: the tool is not in the task's tool list.
    - ``bad_arguments``: the arguments are not a JSON object.
    - ``local``: a real local tool (the sympy calculator) ran.
    - ``tool_error``: a local tool refused or failed on its input.
    """

    kind: Literal["observation"] = "observation"
    status: ObservationStatus
    text: str
    gold_index: int | None = None
    """recorded: which recorded call (0-based, in trajectory order) matched."""


# --- static evaluation summary -------------------------------------------------


class StaticMetrics(Frozen):
    """The five metrics of the alpha-UMi static table, as fractions (the paper prints percent)."""

    plan_acc: float
    act_em: float
    hallu: float
    arg_f1: float
    rouge_l: float
    easy_f1: float | None = None
    hard_f1: float | None = None
    n_steps: int = 0
    n_call_steps: int = 0
    n_conclusion_steps: int = 0
    n_args_scored: int = 0


class StaticSummary(Frozen):
    """``summary.json`` of a static run: the original metrics, the fixed variants, counts and cost."""

    kind: Literal["alpha_umi_static_summary"] = "alpha_umi_static_summary"
    run_id: str
    name: str
    predictor: Predictor
    variant: str
    n: int
    n_expected: int
    original: StaticMetrics
    """Exactly ``evaluate-multi_agent.py`` (quirks included)."""
    fixed: StaticMetrics
    """Hallu. over predicted calls; Arg. F1 over every gold call (a non-JSON gold scores by exact text)."""
    majority_plan_acc: float
    """Plan ACC of always answering the most frequent gold decision (``caller``)."""
    errors: int = 0
    usage_by_role: dict[str, Usage] = Field(default_factory=dict)
    cost_usd: float = 0.0
    sources: dict[str, int] = Field(default_factory=dict)
    wall_s: float = 0.0
    evaluated_this_run: int = 0
    """Steps this invocation evaluated: on a resume, only the steps that had no result."""
    recomputed: int = 0
    """Steps this invocation evaluated although they already had a result (wasted calls; a resume makes none)."""


class LoopSummary(Frozen):
    """``summary.json`` of an end-to-end run over tool-use tasks."""

    kind: Literal["alpha_umi_loop_summary"] = "alpha_umi_loop_summary"
    run_id: str
    name: str
    variant: str
    n: int
    n_expected: int
    finished: int
    """Tasks that ended with a conclusion (not a give-up, not a bound)."""
    gave_up: int
    exhausted: int
    success: int
    """Finished, and every recorded call reproduced (ToolBench), or the answer holds the exact result (calculator)."""
    answer_rouge_l: float
    """Mean ROUGE-L F (rouge package definition) of the final answer against the gold conclusion, where there is one."""
    mean_steps: float
    mean_model_calls: float
    observations: dict[str, int] = Field(default_factory=dict)
    hallucinated_calls: int = 0
    errors: int = 0
    usage_by_role: dict[str, Usage] = Field(default_factory=dict)
    cost_usd: float = 0.0
    sources: dict[str, int] = Field(default_factory=dict)
    wall_s: float = 0.0


AlphaUmiSummary = Annotated[StaticSummary | LoopSummary, Field(discriminator="kind")]


def usage_dump(usage: dict[str, Usage]) -> dict[str, Any]:
    """Per-role usage as plain numbers, for tables."""
    return {role: {"prompt": u.prompt_tokens, "completion": u.completion_tokens} for role, u in usage.items()}
