"""The response store: content addressing, record/replay, many writers, a killed writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from actors.backends.factory import build_backend
from actors.backends.store import (
    RecordingBackend,
    ReplayBackend,
    ResponseStore,
    request_key,
)
from protocols.config import ModelSpec, StoreSpec
from protocols.messages import ChatMessage, Completion, CompletionRequest, Failure, Usage

REPO = Path(__file__).resolve().parents[2]
SPEC = ModelSpec(name="gemma", backend="openai", base_url="http://127.0.0.1:9/v1", endpoint="completions")
BASE = CompletionRequest(model="gemma", prompt="Question: 1+1?\nAnswer:", max_tokens=16, stop=("\n\n",))


class Counting:
    """A live-looking backend that numbers its replies and counts calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        self.calls += 1
        if self.calls <= self.fail_first:
            return Failure(error="server", message="boom", retryable=True)
        return Completion(
            model="gemma",
            text=f"reply {self.calls} to {request.sample_index}",
            usage=Usage(prompt_tokens=3, completion_tokens=4),
            latency_s=0.25,
            cost_usd=0.001,
            source="live",
        )


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "Question: 1+2?\nAnswer:"},
        {"temperature": 0.7},
        {"max_tokens": 17},
        {"stop": ("\n",)},
        {"seed": 1},
        {"sample_index": 1},
    ],
)
def test_key_changes_with_every_field_that_changes_the_response(change: dict[str, object]) -> None:
    assert request_key(SPEC, BASE) != request_key(SPEC, BASE.model_copy(update=change))


@pytest.mark.parametrize("spec_change", [{"name": "gemma-b"}, {"model_id": "other"}, {"endpoint": "chat"}])
def test_key_changes_with_model_identity(spec_change: dict[str, object]) -> None:
    assert request_key(SPEC, BASE) != request_key(SPEC.model_copy(update=spec_change), BASE)


@pytest.mark.parametrize(
    "same",
    [
        {"base_url": "http://10.0.0.5:8000/v1"},  # a moved server still replays
        {"max_in_flight": 7, "timeout_s": 3.0},
    ],
)
def test_key_ignores_where_and_how_the_model_is_reached(same: dict[str, object]) -> None:
    assert request_key(SPEC, BASE) == request_key(SPEC.model_copy(update=same), BASE)


def test_key_ignores_meta_and_distinguishes_messages_from_prompt() -> None:
    meta = BASE.meta.model_copy(update={"problem_id": "p1", "run_id": "r"})
    assert request_key(SPEC, BASE) == request_key(SPEC, BASE.model_copy(update={"meta": meta}))
    chat = CompletionRequest(model="gemma", messages=(ChatMessage(role="user", content=BASE.prompt or ""),))
    assert request_key(SPEC, BASE) != request_key(SPEC, chat)


async def test_record_then_replay_returns_the_recorded_completion(tmp_path: Path) -> None:
    live = Counting()
    recorder = RecordingBackend(live, SPEC, ResponseStore(tmp_path))
    first = await recorder.complete(BASE)
    again = await recorder.complete(BASE)
    await recorder.aclose()
    assert isinstance(first, Completion) and first.source == "live"
    assert isinstance(again, Completion) and again.source == "replay"
    assert live.calls == 1 and recorder.hits == 1
    replayed = await ReplayBackend(SPEC, ResponseStore(tmp_path)).complete(BASE)
    assert isinstance(replayed, Completion)
    assert replayed == first.model_copy(update={"source": "replay"})


async def test_failures_are_not_recorded(tmp_path: Path) -> None:
    live = Counting(fail_first=1)
    recorder = RecordingBackend(live, SPEC, ResponseStore(tmp_path))
    assert isinstance(await recorder.complete(BASE), Failure)
    assert isinstance(await recorder.complete(BASE), Completion)
    assert live.calls == 2 and len(ResponseStore(tmp_path)) == 1


async def test_identical_requests_in_flight_share_one_call(tmp_path: Path) -> None:
    import asyncio

    class Slow(Counting):
        async def complete(self, request: CompletionRequest) -> Completion | Failure:
            await asyncio.sleep(0.05)
            return await super().complete(request)

    live = Slow()
    recorder = RecordingBackend(live, SPEC, ResponseStore(tmp_path))
    replies = await asyncio.gather(*(recorder.complete(BASE) for _ in range(5)))
    assert live.calls == 1 and len({r.text for r in replies if isinstance(r, Completion)}) == 1


async def test_replay_miss_names_model_sample_and_prompt(tmp_path: Path) -> None:
    reply = await ReplayBackend(SPEC, ResponseStore(tmp_path)).complete(BASE.model_copy(update={"sample_index": 3}))
    assert isinstance(reply, Failure)
    assert reply.error == "replay_miss" and not reply.retryable
    assert "'gemma'" in reply.message and "sample 3" in reply.message and "1+1?" in reply.message


def test_torn_last_line_is_skipped_and_earlier_records_survive(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    reply = Completion(model="gemma", text="x", source="live")
    for i in range(3):
        store.put(f"k{i}", {}, reply)
    store.close()
    segment = store.segments()[0]
    with segment.open("ab") as fh:
        fh.write(b'{"key": "k9", "reply": {"kind": "compl')  # a writer killed mid-line
    reread = ResponseStore(tmp_path)
    assert len(reread) == 3 and reread.get("k9") is None
    with segment.open("ab") as fh:  # junk followed by more lines is counted and skipped
        fh.write(b"\n" + json.dumps({"key": "k5", "reply": reply.model_dump(mode="json")}).encode() + b"\n")
    reread = ResponseStore(tmp_path)
    assert len(reread) == 4 and reread.skipped_lines == 1


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from actors.backends.store import ResponseStore
    from protocols.messages import Completion
    store = ResponseStore(Path(sys.argv[1]))
    tag, n = sys.argv[2], int(sys.argv[3])
    for i in range(n):
        store.put(f"{tag}-{i}", {"i": i}, Completion(model="m", text=tag * 50, source="live"))
        if i == 5:
            print("ready", flush=True)
    print("done", flush=True)
    """
)


def _writer(tmp_path: Path, tag: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), tag, str(n)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_many_processes_record_at_once_without_losing_a_record(tmp_path: Path) -> None:
    procs = [_writer(tmp_path, tag, 300) for tag in ("a", "b", "c", "d")]
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "done" in out
    store = ResponseStore(tmp_path)
    assert len(store) == 1200 and store.skipped_lines == 0
    assert len(store.segments()) == 4


def test_a_sigkilled_writer_leaves_every_complete_record_readable(tmp_path: Path) -> None:
    proc = _writer(tmp_path, "k", 10_000_000)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    store = ResponseStore(tmp_path)
    assert len(store) >= 6
    assert store.skipped_lines <= 1  # at most the line being written when killed
    found = store.get("k-5")
    assert found is not None and found.text == "k" * 50


async def test_factory_replay_mode_never_calls_live(tmp_path: Path) -> None:
    backend = build_backend(SPEC, 0, StoreSpec(mode="replay"), tmp_path)
    assert isinstance(backend, ReplayBackend)
    reply = await backend.complete(BASE)
    assert isinstance(reply, Failure) and reply.error == "replay_miss"


@pytest.mark.parametrize(("mode", "kind"), [("record", RecordingBackend), ("off", None)])
def test_factory_records_openai_only_in_record_mode(tmp_path: Path, mode: str, kind: type | None) -> None:
    backend = build_backend(SPEC, 0, StoreSpec(mode=mode), tmp_path)  # type: ignore[arg-type]
    assert isinstance(backend, kind) if kind else not isinstance(backend, RecordingBackend)


def test_factory_needs_a_store_directory() -> None:
    with pytest.raises(ValueError, match="'record' needs a store directory"):
        build_backend(SPEC, 0, StoreSpec(mode="record"), None)


def test_factory_replay_mode_keeps_sim_models_simulated(tmp_path: Path) -> None:
    sim = ModelSpec(name="Llama-3.1-8B-Instruct", backend="sim")
    assert not isinstance(build_backend(sim, 0, StoreSpec(mode="replay"), tmp_path), ReplayBackend)
    replay = ModelSpec(name="gemma", backend="replay", endpoint="completions")
    assert isinstance(build_backend(replay, 0, StoreSpec(mode="off"), tmp_path), ReplayBackend)
