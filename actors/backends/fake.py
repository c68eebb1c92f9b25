"""The ``fake`` backend: a test double driven by a function of the request, labelled ``source: fake``.

Like pydantic-ai's ``FunctionModel`` (a model whose reply is a function of the messages)
and Inspect's ``mockllm/model`` (an ordinary provider selected by name), it is an ordinary
backend: a config says ``backend: fake`` and the run goes through the real model actors,
runners and driver, so tests exercise the production path. Nothing it writes is a model's
behaviour, so every completion says ``source: fake`` and reports say FAKE.

Built-in replies (``ModelSpec.fake.reply``), each a pure function of the request:

- ``gold``: the right answer in the problem's format (``\\boxed{}``, ``#### n``, ``Answer: X``)
  for any solving role; ``Verdict: CORRECT`` to a verifier exactly when the candidate is the
  reference (string match); as a ReAct agent, each tool not yet called in turn, then the
  Final Answer; as an alpha-UMi role, the recorded gold turn (``meta.extra["gold_next"]``).
- ``wrong``: the same shapes with a wrong answer (and the opposite verdict).
- ``echo``: the last user turn (or the raw prompt).
- ``fixed``: ``fake.text``.
- ``script``: sample ``i`` replies ``fake.script[i % len]`` (by sample index, so it is
  deterministic however calls interleave).

``fake.errors`` maps failure kinds to rates: a seeded draw per (request, attempt) fails the
call with that kind, so retries, open failures and error accounting run for real.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence

from protocols.config import FakeSpec, ModelSpec, Price
from protocols.messages import (
    TRANSIENT_KINDS,
    AnswerFormat,
    Completion,
    CompletionRequest,
    Failure,
    FailureKind,
    Problem,
    Usage,
)

Reply = str | Completion | Failure
"""What a reply function returns: text (usage is counted from it), a full completion, or a failure."""
ReplyFn = Callable[[CompletionRequest], Reply | Awaitable[Reply]]


class FakeBackend:
    """Replies with a function of the request (or a list taken in call order); records every request.

    Args:
        reply: a function of the request (sync or async); a sequence of replies taken in
            call order, for sequential tests (one call too many raises: a test that makes
            more calls than it scripted is wrong); or a ``FakeSpec`` naming a built-in reply.
        model: the model name written on completions (default: the request's model).
        seed: seeds the error-injection draw.
        errors: failure kind -> rate of calls that fail with it (``FakeSpec.errors``).
        usage: fixed usage per completion (default: 4 characters a token, at least 1).
        cost_usd: fixed cost per completion (default: from ``price``, else free).
        price: USD per million tokens.
    """

    def __init__(
        self,
        reply: ReplyFn | Sequence[Reply] | FakeSpec | None = None,
        *,
        model: str | None = None,
        seed: int = 0,
        errors: Mapping[FailureKind, float] | None = None,
        usage: Usage | None = None,
        cost_usd: float | None = None,
        price: Price | None = None,
    ) -> None:
        spec = reply if isinstance(reply, FakeSpec) else None
        self._fn: ReplyFn
        if reply is None or isinstance(reply, FakeSpec):
            self._fn = builtin_reply(reply or FakeSpec())
        elif callable(reply):
            self._fn = reply
        else:
            self._fn = self._scripted(list(reply))
        self.model = model
        self.seed = seed
        self.errors = dict(errors if errors is not None else (spec.errors if spec else {}))
        self.usage = usage
        self.cost_usd = cost_usd
        self.price = price
        self.requests: list[CompletionRequest] = []
        self._attempts: dict[str, int] = {}

    @classmethod
    def from_spec(cls, spec: ModelSpec, seed: int) -> FakeBackend:
        """The backend a ``backend: fake`` model spec asks for."""
        return cls(spec.fake or FakeSpec(), model=spec.name, seed=seed, price=spec.price)

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        self.requests.append(request)
        failure = self._injected(request)
        if failure is not None:
            return failure
        out = self._fn(request)
        reply = await out if isinstance(out, Awaitable) else out
        if isinstance(reply, Failure):
            return reply
        if isinstance(reply, Completion):
            return reply if reply.source == "fake" else reply.model_copy(update={"source": "fake"})
        usage = self.usage or Usage(prompt_tokens=_tokens(_content(request)), completion_tokens=_tokens(reply))
        price = self.price or Price()
        cost = self.cost_usd
        if cost is None:
            cost = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6
        return Completion(model=self.model or request.model, text=reply, usage=usage, cost_usd=cost, source="fake")

    def _scripted(self, script: list[Reply]) -> ReplyFn:
        def next_reply(_request: CompletionRequest) -> Reply:
            n = len(self.requests)
            if n > len(script):
                raise IndexError(f"fake script of {len(script)} replies asked for reply {n}")
            return script[n - 1]

        return next_reply

    def _injected(self, request: CompletionRequest) -> Failure | None:
        if not any(self.errors.values()):
            return None
        meta = request.meta
        ident = f"{meta.problem_id}|{meta.role}|{meta.step}|{request.sample_index}|{_content(request)}"
        # A retry is a new attempt with a fresh draw, as the simulator's faults are.
        attempt = self._attempts.get(ident, 0)
        u = _unit(self.seed, self.model or request.model, ident, attempt)
        edge = 0.0
        for kind, rate in sorted(self.errors.items()):
            edge += rate
            if u < edge:
                self._attempts[ident] = attempt + 1
                name = self.model or request.model
                return Failure(
                    error=kind,
                    message=f"injected {kind} failure from fake model {name!r}",
                    retryable=kind in TRANSIENT_KINDS,
                    model=name,
                )
        self._attempts.pop(ident, None)
        return None


def builtin_reply(spec: FakeSpec) -> ReplyFn:
    """The reply function a ``FakeSpec`` names."""
    match spec.reply:
        case "gold":
            return lambda request: _answer(request, right=True)
        case "wrong":
            return lambda request: _answer(request, right=False)
        case "echo":
            return _last_user_turn
        case "fixed":
            return lambda _request: spec.text
        case "script":
            script = spec.script
            return lambda request: script[request.sample_index % len(script)]


def answer_line(answer_format: AnswerFormat, answer: str) -> str:
    """The final line a grader of ``answer_format`` reads ``answer`` from."""
    match answer_format:
        case "gsm8k":
            return f"#### {answer}"
        case "letter":
            return f"Answer: {answer}"
        case "boxed" | "free":
            return f"The answer is \\boxed{{{answer}}}."


def wrong_answer(problem: Problem) -> str:
    """An answer that is not the reference: the next letter, the next integer, else the reference plus 1."""
    ref = problem.reference.strip()
    if problem.answer_format == "letter":
        letters = "".join(chr(ord("A") + i) for i in range(max(4, len(problem.choices))))
        return letters[(letters.find(ref) + 1) % len(letters)] if ref in letters else "A"
    try:
        return str(int(ref.replace(",", "")) + 1)
    except ValueError:
        return f"{ref}+1"


def _answer(request: CompletionRequest, *, right: bool) -> Reply:
    meta = request.meta
    if meta.role in ("planner", "caller", "summarizer"):
        # alpha-UMi roles: the orchestrator shows the recorded gold turn in the meta.
        gold = str(meta.extra.get("gold_next") or "")
        return gold if right else "I cannot make progress. Next: give up."
    problem = meta.problem
    if problem is None:
        return Failure(
            error="config",
            message=f"fake reply {'gold' if right else 'wrong'!r} needs the problem in the request meta",
            model=request.model,
        )
    answer = problem.reference if right else wrong_answer(problem)
    match meta.role:
        case "verifier":
            is_gold = (meta.target or "").strip() == problem.reference.strip()
            return "Checked each step.\nVerdict: " + ("CORRECT" if is_gold == right else "INCORRECT")
        case "agent":
            left = [t for t in meta.tools if t not in meta.tools_called]
            if left:
                query = json.dumps({"query": problem.question})
                return f"Thought: I should ask {left[0]}.\nAction: {left[0]}\nAction Input: {query}"
            return f"Thought: I now know the final answer\nFinal Answer: {answer_line(problem.answer_format, answer)}"
    return f"Fake reasoning.\n{answer_line(problem.answer_format, answer)}"


def _last_user_turn(request: CompletionRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    users = [m.content for m in request.messages if m.role == "user"]
    return users[-1] if users else request.messages[-1].content


def _content(request: CompletionRequest) -> str:
    return request.prompt if request.prompt is not None else "\n".join(m.content for m in request.messages)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _unit(*key: object) -> float:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
