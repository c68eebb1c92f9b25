"""The experiment configuration: one frozen model per run, validated once at the edge.

YAML loading and ``key=value`` overrides live in ``experiments.runtime.config_io``; this
module only defines the shapes (stdlib + pydantic, like all of ``protocols``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from protocols.messages import FailureKind, Frozen

BackendName = Literal["sim", "openai", "replay", "fake"]
DatasetName = Literal["math500", "gsm8k", "gpqa", "synthetic"]


class Strict(Frozen):
    """Base of every config section (the card schema and study configs too): immutable, unknown keys
    are errors, as for every message (``Frozen``); one base, under the name configs read best with."""


class FaultSpec(Strict):
    """Injected faults (simulated backend and simulated server): rates per request."""

    rate_limit: float = Field(default=0.0, ge=0.0, le=1.0)
    server_error: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout: float = Field(default=0.0, ge=0.0, le=1.0)
    malformed: float = Field(default=0.0, ge=0.0, le=1.0)


class FakeSpec(Strict):
    """fake: the test double's built-in reply (``actors.backends.fake``); its completions say ``source: fake``."""

    reply: Literal["gold", "wrong", "echo", "fixed", "script"] = "gold"
    """gold/wrong: the reference (or a wrong answer) in the problem's format; echo: the last user
    turn; fixed: ``text``; script: sample i replies ``script[i % len(script)]``."""
    text: str = ""
    script: tuple[str, ...] = ()
    errors: dict[FailureKind, float] = Field(default_factory=dict)
    """Failure kind -> share of calls (per request and attempt, seeded) that fail with it."""

    @model_validator(mode="after")
    def _reply_fields(self) -> FakeSpec:
        if self.reply == "script" and not self.script:
            raise ValueError("fake reply 'script' needs a non-empty script")
        rates = list(self.errors.values())
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0:
            raise ValueError(f"fake errors must be rates in [0, 1] summing to at most 1, got {self.errors}")
        return self


class Price(Strict):
    """USD per million tokens."""

    input: float = Field(default=0.0, ge=0.0)
    output: float = Field(default=0.0, ge=0.0)


class ModelSpec(Strict):
    """One model the run may call, and the backend that serves it."""

    name: str = Field(min_length=1)
    backend: BackendName = "sim"
    card: str | None = None
    """sim: the model card to simulate (defaults to ``name``)."""
    base_url: str | None = None
    """openai: e.g. ``https://openrouter.ai/api/v1`` or ``http://127.0.0.1:8000/v1``."""
    model_id: str | None = None
    """openai: the id sent on the wire (defaults to ``name``)."""
    api_key_env: str | None = None
    """openai: the *name* of the environment variable holding the key; never the key."""
    endpoint: Literal["chat", "completions"] = "chat"
    http_client: Literal["http1", "aiohttp"] = "http1"
    """openai: ``http1`` (slmsim's lean keep-alive HTTP/1.1 client, a third of aiohttp's CPU a
    request) or ``aiohttp`` (follows redirects, keeps cookies, honours HTTP(S)_PROXY from the
    environment). Execution only: either gets the same reply from the same server."""
    max_in_flight: int = Field(default=32, ge=1, le=4096)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    price: Price | None = None
    time_scale: float = Field(default=0.0, ge=0.0)
    """sim: real seconds slept per simulated second of latency (0 = no sleeping)."""
    faults: FaultSpec = Field(default_factory=FaultSpec)
    fake: FakeSpec | None = None
    """fake: the built-in reply and injected errors (default: ``reply: gold``, no errors)."""
    replicas: int | Literal["per_node"] = 1
    """How many model actors serve this model: a count (spread over nodes), or ``per_node``
    (one on every node alive at start). A runner calls a replica on its own node when there
    is one. Execution only: replicas never change a result."""
    resources: dict[str, float] = Field(default_factory=dict)
    """Ray custom resources each replica needs, e.g. ``{gpu_box: 0.01}``: the replicas go only
    to nodes started with that resource (``ray start --resources='{"gpu_box": 1}'``)."""

    @field_validator("replicas")
    @classmethod
    def _replicas_positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError(f"replicas must be 1..256 or 'per_node', got {value}")
        return value

    @model_validator(mode="after")
    def _backend_fields(self) -> ModelSpec:
        if self.backend == "openai" and not self.base_url:
            raise ValueError(f"model {self.name!r}: backend 'openai' needs base_url")
        if self.fake is not None and self.backend != "fake":
            raise ValueError(f"model {self.name!r}: 'fake' settings need backend 'fake', not {self.backend!r}")
        return self

    @property
    def card_name(self) -> str:
        return self.card or self.name


def existing_path(path: Path | None) -> Path | None:
    """A dataset file given in a config must exist (None: the default location)."""
    if path is not None and not path.exists():
        raise ValueError(f"dataset path {str(path)!r} does not exist")
    return path


class DatasetSpec(Strict):
    """Which problems to evaluate."""

    name: DatasetName = "synthetic"
    path: Path | None = None
    """A local file; None means the default location (or generation, for synthetic)."""
    split: str = "test"
    limit: int | None = Field(default=None, ge=1)
    offset: int = Field(default=0, ge=0)
    shuffle: bool = False
    seed: int = 0

    _exists = field_validator("path")(existing_path)


class StoreSpec(Strict):
    """The response store: record live calls, or replay them."""

    mode: Literal["off", "record", "replay"] = "off"
    path: Path | None = None
    """Directory of the store; None means ``<out_dir>/store``."""

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as False; accept it rather than surprise the user.
        return "off" if value is False else value


class RunSpec(Strict):
    """How the run executes."""

    out_dir: Path = Path("runs/default")
    runners: int = Field(default=2, ge=1, le=256)
    problems_in_flight: int = Field(default=32, ge=1, le=10000)
    """Per runner actor."""
    address: str | None = None
    """Ray address to join; None starts (or reuses) a local instance. RAY_ADDRESS also works."""
    progress: bool = True
    problem_timeout_s: float = Field(default=1800.0, gt=0)
    problem_retries: int = Field(default=4, ge=0, le=20)
    """Extra attempts at a problem whose result carries a transient failure (outage, 429, 5xx, dead actor)."""
    retry_backoff_s: float = Field(default=5.0, ge=0.0, le=600.0)
    """Wait before the first such re-attempt; doubled each time, at most 120 s (with the
    backend's own retries, the defaults ride out an outage of about 75 s)."""
    actor_restarts: int = Field(default=3, ge=0, le=100)
    """How many times each model, judge and runner actor is restarted after its process dies."""
    runner_strategy: Literal["SPREAD", "DEFAULT"] = "SPREAD"
    """Ray scheduling strategy of runner actors: SPREAD puts them on different nodes."""
    runner_resources: dict[str, float] = Field(default_factory=dict)
    """Ray custom resources each runner actor needs: runners go only to nodes offering them."""


# --- orchestrators -----------------------------------------------------------


class SingleConfig(Strict):
    """One model, one sample."""

    kind: Literal["single"] = "single"
    model: str
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    prompt_style: Literal["chat", "few_shot"] = "chat"
    """``few_shot``: a plain completions prompt with worked examples, for base models."""
    shots: int = Field(default=4, ge=0, le=16)


class SelfConsistencyConfig(Strict):
    """One model, k samples, majority vote over equivalent answers."""

    kind: Literal["self_consistency"] = "self_consistency"
    model: str
    k: int = Field(default=5, ge=1, le=256)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    prompt_style: Literal["chat", "few_shot"] = "chat"
    """``few_shot``: a plain completions prompt with worked examples, for base models."""
    shots: int = Field(default=4, ge=0, le=16)


class SlmMuxConfig(Strict):
    """SLM-MUX: k samples per model, the most self-consistent model answers."""

    kind: Literal["slm_mux"] = "slm_mux"
    models: tuple[str, ...] = Field(min_length=1)
    k: int = Field(default=3, ge=1, le=256)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    validation_accuracy: dict[str, float] = Field(default_factory=dict)
    """Tie-break: the model with the higher validation accuracy wins a confidence tie."""


class AgentForestConfig(Strict):
    """Agent Forest: one majority vote over all models' samples pooled."""

    kind: Literal["agent_forest"] = "agent_forest"
    models: tuple[str, ...] = Field(min_length=1)
    k: int = Field(default=3, ge=1, le=256)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)


class MoAConfig(Strict):
    """Mixture-of-Agents: proposers answer, an aggregator writes the final answer."""

    kind: Literal["moa"] = "moa"
    proposers: tuple[str, ...] = Field(min_length=1)
    aggregator: str
    layers: int = Field(default=1, ge=1, le=8)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)


class DebateConfig(Strict):
    """LLM-Debate: R rounds, each agent sees all previous-round answers; final majority."""

    kind: Literal["debate"] = "debate"
    models: tuple[str, ...] = Field(min_length=1)
    rounds: int = Field(default=2, ge=1, le=16)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)


class MavConfig(Strict):
    """Multi-Agent Verification: proposers' candidates, verifiers vote on each."""

    kind: Literal["mav"] = "mav"
    proposers: tuple[str, ...] = Field(min_length=1)
    verifiers: tuple[str, ...] = Field(min_length=1)
    k: int = Field(default=1, ge=1, le=64)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)


class StackingConfig(Strict):
    """A fixed hierarchical tool-stacking structure, e.g. ``Agent[A_0, Agent[B_0]]@A``."""

    kind: Literal["stacking"] = "stacking"
    structure: str
    max_steps: int = Field(default=15, ge=1, le=100)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    reuse_answers: bool = False
    """Search only: an agent may serve its earlier answer to the same (problem, query) again."""
    observation_chars: int = Field(default=6000, ge=100)
    """A tool's reply is cut to this many characters in the observation shown to the agent."""


OrchestratorConfig = Annotated[
    SingleConfig
    | SelfConsistencyConfig
    | SlmMuxConfig
    | AgentForestConfig
    | MoAConfig
    | DebateConfig
    | MavConfig
    | StackingConfig,
    Field(discriminator="kind"),
]


def model_named(models: tuple[ModelSpec, ...], name: str) -> ModelSpec:
    """The spec of the model called ``name``; KeyError names it."""
    for spec in models:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown model {name!r}")


def referenced_models(orchestrator: OrchestratorConfig) -> tuple[str, ...]:
    """Every model name an orchestrator config refers to (stacking excluded: its tree names them)."""
    match orchestrator:
        case SingleConfig(model=m) | SelfConsistencyConfig(model=m):
            return (m,)
        case SlmMuxConfig(models=ms) | AgentForestConfig(models=ms) | DebateConfig(models=ms):
            return ms
        case MoAConfig(proposers=ps, aggregator=a):
            return (*ps, a)
        case MavConfig(proposers=ps, verifiers=vs):
            return (*ps, *vs)
    return ()


class ExperimentConfig(Strict):
    """One run: dataset x orchestrator x model specs x seed."""

    name: str = "experiment"
    seed: int = 0
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    orchestrator: OrchestratorConfig
    run: RunSpec = Field(default_factory=RunSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)

    @model_validator(mode="after")
    def _models_known(self) -> ExperimentConfig:
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models: duplicate name(s) {dupes}")
        missing = [m for m in referenced_models(self.orchestrator) if m not in names]
        if missing:
            raise ValueError(f"orchestrator refers to unknown model(s) {missing}; known: {names}")
        return self

    def model(self, name: str) -> ModelSpec:
        return model_named(self.models, name)
