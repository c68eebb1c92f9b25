"""Protocol messages: validation, tagged unions, JSON round trips, totals roll-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocols.messages import (
    REPLY_ADAPTER,
    RESULT_ADAPTER,
    CallRecord,
    ChatMessage,
    Completion,
    CompletionRequest,
    Failure,
    NoteRecord,
    ProblemResult,
    ToolCallRecord,
    Usage,
    totals_of,
)


def _completion(model: str = "m", p: int = 10, c: int = 5, cost: float = 0.01, attempts: int = 1) -> Completion:
    return Completion(
        model=model,
        text="ok",
        usage=Usage(prompt_tokens=p, completion_tokens=c),
        cost_usd=cost,
        source="sim",
        attempts=attempts,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "m"},  # neither messages nor prompt
        {"model": "m", "prompt": "x", "messages": (ChatMessage(role="user", content="y"),)},
        {"model": "m", "prompt": "x", "temperature": 3.0},
        {"model": "m", "prompt": "x", "sample_index": -1},
        {"model": "m", "prompt": "x", "unknown": 1},
    ],
)
def test_bad_requests_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        CompletionRequest(**kwargs)


def test_messages_are_frozen() -> None:
    request = CompletionRequest(model="m", prompt="x")
    with pytest.raises(ValidationError):
        request.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "reply",
    [_completion(), Failure(error="rate_limit", message="429", retryable=True, retry_after_s=2.0, attempts=3)],
)
def test_reply_union_round_trips_by_kind(reply: Completion | Failure) -> None:
    back = REPLY_ADAPTER.validate_json(REPLY_ADAPTER.dump_json(reply))
    assert type(back) is type(reply)
    assert back == reply


def test_totals_recurse_into_nested_tool_calls() -> None:
    inner = (CallRecord(model="b", role="solver", reply=_completion("b", 100, 50, 0.5, attempts=2)),)
    nested = ToolCallRecord(
        tool="B_1",
        query="q",
        answer="1",
        trace=(*inner, ToolCallRecord(tool="C_0", query="q", answer="2", trace=inner)),
    )
    trace = (
        CallRecord(model="a", role="agent", reply=_completion("a", 10, 5, 0.01)),
        nested,
        CallRecord(model="a", role="agent", reply=Failure(error="server", message="500", usage=Usage())),
        NoteRecord(label="decision", data={"x": 1}),
    )
    totals = totals_of(trace)
    assert totals.usage == Usage(prompt_tokens=210, completion_tokens=105)
    assert totals.calls == 4
    assert totals.failed_calls == 1
    assert totals.retries == 2
    assert totals.cost_usd == pytest.approx(1.01)
    assert totals.sources == ("sim",)


def test_problem_result_round_trips_with_nested_trace() -> None:
    trace = (
        ToolCallRecord(
            tool="t", query="q", answer=None, trace=(CallRecord(model="a", role="solver", reply=_completion()),)
        ),
    )
    result = ProblemResult(
        run_id="r", problem_id="p", index=3, benchmark="math500", orchestrator="stacking", reference="1", trace=trace
    )
    assert RESULT_ADAPTER.validate_json(result.model_dump_json()) == result
