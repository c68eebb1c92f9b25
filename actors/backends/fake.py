"""A deterministic scripted backend: a first-class test double that records what it was asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from protocols.messages import Completion, CompletionRequest, Failure, Usage

Reply = str | Failure


class FakeBackend:
    """Replies from a script (a list cycled in order, or a function of the request).

    Every request is kept in ``requests`` so tests can assert what an orchestrator sent.
    Completions are marked ``source="sim"``: a fake is never mistaken for a live model.
    """

    def __init__(self, script: Sequence[Reply] | Callable[[CompletionRequest], Reply], model: str = "fake") -> None:
        self.script = script
        self.model = model
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        self.requests.append(request)
        if callable(self.script):
            reply = self.script(request)
        else:
            reply = self.script[(len(self.requests) - 1) % len(self.script)]
        if isinstance(reply, Failure):
            return reply
        prompt_chars = len(request.prompt or "") + sum(len(m.content) for m in request.messages)
        return Completion(
            model=request.model,
            text=reply,
            usage=Usage(prompt_tokens=max(1, prompt_chars // 4), completion_tokens=max(1, len(reply) // 4)),
            source="sim",
        )
