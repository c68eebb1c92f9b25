"""Typed messages exchanged between actors, backends and orchestrators.

Every message is a frozen pydantic model tagged by ``kind``. They are defined at
module level so Ray pickles them by reference; ``REPLY_ADAPTER`` and
``RESULT_ADAPTER`` do all JSON (de)serialisation of the unions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

Source = Literal["sim", "live", "replay", "sim-served", "fake"]
"""Where a completion came from; ``sim-served`` = the simulator behind serve-sim, reached over HTTP;
``fake`` = the test double (``backend: fake``), which is no model at all."""
Role = Literal[
    "solver",
    "aggregator",
    "debater",
    "verifier",
    "agent",
    "planner",
    "caller",
    "summarizer",
]
AnswerFormat = Literal["boxed", "gsm8k", "letter", "free"]
FailureKind = Literal[
    "timeout",
    "rate_limit",
    "server",
    "client",
    "connection",
    "malformed",
    "replay_miss",
    "steps_exhausted",
    "grading",
    "internal",
    "actor",
    "config",
]
TRANSIENT_KINDS: frozenset[str] = frozenset({"timeout", "rate_limit", "server", "connection", "actor"})
"""Failure kinds that say nothing about the problem: the same call may well succeed later.

``actor`` is a Ray actor that died (a killed or crashed process) while serving the call.
Every other kind is permanent unless the ``Failure`` says ``retryable`` (e.g. a malformed
HTTP body, which a proxy or a dropped connection can produce once)."""


class Frozen(BaseModel):
    """Base of every message: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(Frozen):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


class Problem(Frozen):
    """One evaluation item with its gold answer and difficulty metadata."""

    kind: Literal["problem"] = "problem"
    id: str
    benchmark: str
    question: str
    reference: str
    answer_format: AnswerFormat
    choices: tuple[str, ...] = ()
    domain: str | None = None
    subdomain: str | None = None
    level: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RequestMeta(Frozen):
    """Context for a request that real backends ignore and the simulator uses.

    ``candidates`` are the (extracted) answers the prompt shows the model — other
    agents' answers for an aggregator, debater or verifier, tool observations for a
    ReAct agent — so the simulator can model picking among them without parsing.
    """

    problem_id: str | None = None
    run_id: str | None = None
    role: Role = "solver"
    problem: Problem | None = None
    candidates: tuple[str | None, ...] = ()
    target: str | None = None
    tools: tuple[str, ...] = ()
    tools_called: tuple[str, ...] = ()
    step: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)


class CompletionRequest(Frozen):
    """A request for one sample from one model: chat ``messages`` or a raw ``prompt``."""

    kind: Literal["completion_request"] = "completion_request"
    model: str
    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    stop: tuple[str, ...] = ()
    seed: int = 0
    sample_index: int = Field(default=0, ge=0)
    meta: RequestMeta = Field(default_factory=RequestMeta)

    @model_validator(mode="after")
    def _one_input(self) -> CompletionRequest:
        if bool(self.messages) == (self.prompt is not None):
            raise ValueError("a CompletionRequest needs exactly one of messages or prompt")
        return self


class Usage(Frozen):
    """Token counts of one call (or a sum of calls)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Completion(Frozen):
    """A successful model reply."""

    kind: Literal["completion"] = "completion"
    model: str
    text: str
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    cost_usd: float = 0.0
    finish_reason: str = "stop"
    source: Source
    attempts: int = 1


class Failure(Frozen):
    """A typed error that crossed a boundary instead of an answer."""

    kind: Literal["failure"] = "failure"
    error: FailureKind
    message: str
    retryable: bool = False
    model: str | None = None
    attempts: int = 1
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    retry_after_s: float | None = None
    """The server's Retry-After hint (seconds), honoured by the retry wrapper."""

    @property
    def transient(self) -> bool:
        """True when the failure says nothing about the problem (outage, 429, 5xx, dead actor...)."""
        return self.retryable or self.error in TRANSIENT_KINDS


ModelReply = Annotated[Completion | Failure, Field(discriminator="kind")]
REPLY_ADAPTER: TypeAdapter[Completion | Failure] = TypeAdapter(ModelReply)


class CallRecord(Frozen):
    """One model call inside a trace: who was asked, in what role, and the reply."""

    kind: Literal["call"] = "call"
    model: str
    role: Role
    sample_index: int = 0
    label: str = ""
    reply: ModelReply


class ToolCallRecord(Frozen):
    """One tool call by an agent; the tool may itself be an agent with a nested trace."""

    kind: Literal["tool_call"] = "tool_call"
    tool: str
    query: str
    answer: str | None
    trace: tuple[TraceEvent, ...] = ()
    error: Failure | None = None


class NoteRecord(Frozen):
    """A decision or observation an orchestrator wants kept in the trace."""

    kind: Literal["note"] = "note"
    label: str
    data: dict[str, Any] = Field(default_factory=dict)


TraceEvent = Annotated[CallRecord | ToolCallRecord | NoteRecord, Field(discriminator="kind")]
ToolCallRecord.model_rebuild()


class Totals(Frozen):
    """Usage, cost and call counts summed over a trace, nested agents included."""

    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    sources: tuple[Source, ...] = ()


def totals_of(trace: tuple[TraceEvent, ...] | list[TraceEvent]) -> Totals:
    """Sum usage, cost, calls and retries over a trace, recursing into tool calls."""
    usage = Usage()
    cost = 0.0
    calls = failed = retries = 0
    sources: set[str] = set()
    for event in trace:
        if isinstance(event, CallRecord):
            reply = event.reply
            usage = usage + reply.usage
            cost += reply.cost_usd
            calls += 1
            # A replayed completion made no call now: its recorded attempts are history, not retries.
            if not (isinstance(reply, Completion) and reply.source == "replay"):
                retries += max(0, reply.attempts - 1)
            if isinstance(reply, Failure):
                failed += 1
            else:
                sources.add(reply.source)
        elif isinstance(event, ToolCallRecord):
            inner = totals_of(event.trace)
            usage = usage + inner.usage
            cost += inner.cost_usd
            calls += inner.calls
            failed += inner.failed_calls
            retries += inner.retries
            sources.update(inner.sources)
    return Totals(
        usage=usage,
        cost_usd=cost,
        calls=calls,
        failed_calls=failed,
        retries=retries,
        sources=tuple(sorted(sources)),  # type: ignore[arg-type]
    )


class Grade(Frozen):
    """The grader's verdict on one final text: what it extracted, and why it failed if it did."""

    extracted: str | None
    correct: bool
    reason: str | None = None


class ProblemResult(Frozen):
    """One line of ``results.jsonl``: everything that happened on one problem."""

    kind: Literal["problem_result"] = "problem_result"
    run_id: str
    problem_id: str
    index: int
    benchmark: str
    domain: str | None = None
    orchestrator: str
    final_text: str | None = None
    answer: str | None = None
    reference: str
    correct: bool = False
    score: float = 0.0
    grade_reason: str | None = None
    error: Failure | None = None
    totals: Totals = Field(default_factory=Totals)
    trace: tuple[TraceEvent, ...] = ()
    details: dict[str, Any] = Field(default_factory=dict)
    wall_s: float = 0.0


def transient_failure(result: ProblemResult) -> Failure | None:
    """The transient failure that makes ``result`` not final, or None if the result stands.

    A result is not final when its own error is transient, or when any call or tool call
    in its trace (nested agents included) failed transiently: such an answer was computed
    with inputs missing because of an outage, not because of the model, so it must be
    computed again rather than kept.
    """
    if result.error is not None and result.error.transient:
        return result.error
    return _transient_in(result.trace)


def _transient_in(trace: tuple[TraceEvent, ...]) -> Failure | None:
    for event in trace:
        if isinstance(event, CallRecord) and isinstance(event.reply, Failure) and event.reply.transient:
            return event.reply
        if isinstance(event, ToolCallRecord):
            if event.error is not None and event.error.transient:
                return event.error
            inner = _transient_in(event.trace)
            if inner is not None:
                return inner
    return None


RESULT_ADAPTER: TypeAdapter[ProblemResult] = TypeAdapter(ProblemResult)
