"""The response store: every live completion recorded, content-addressed, replayable exactly.

**Key.** sha256 of the canonical JSON of what determines a response at the config
level: the endpoint kind (chat / completions), the model's configured ``name`` and
its wire ``model_id``, the messages or prompt, temperature, max_tokens, stop, seed
and sample index. The base URL is deliberately *not* in the key: moving a server
to another port or mirror must not invalidate a recording. Two providers serving
the same model id are told apart by giving them different model names (or stores).
``meta`` is not in the key: real backends never see it.

**Storage.** A directory of append-only JSONL *segments*, one per writer (process
id + random suffix), each record one line written with a single ``os.write`` on an
``O_APPEND`` descriptor. Many actor processes can record at once without locks
(no two write the same file); a SIGKILL leaves at most a torn last line, which the
reader skips, and everything written before is intact (it is in the kernel's page
cache once ``write`` returns; ``durable=True`` adds an fsync per record against
power loss). Segments are plain text: greppable, mergeable by copying files. We
chose this over sqlite-WAL because it needs no locking across processes or nodes
sharing a directory, and a record can never be half-committed.

When the same key was recorded twice (two processes raced on one request), the
first record in segment-name order wins, and a process keeps what it served first.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from actors.backends.base import Wrapper
from protocols.config import ModelSpec
from protocols.interfaces import Backend
from protocols.messages import REPLY_ADAPTER, Completion, CompletionRequest, Failure

SEGMENT_SUFFIX = ".jsonl"
MASK = "***"
_MIN_FORM_CHARS = 8  # shorter encodings would mask ordinary text by accident


def secret_forms(secret: str) -> list[str]:
    """Every spelling of ``secret`` that can end up in an artefact, longest first.

    A server may echo the key raw, inside a JSON string (``"`` and ``\\`` escaped, once
    or twice), URL-encoded (``%`` and ``+`` forms), or base64-encoded inside an
    ``Authorization: Basic`` header (``user:key``, at any alignment: the part of the
    base64 text that depends only on the key's bytes is matched).
    """
    forms = {secret}
    once = json.dumps(secret)[1:-1]
    forms |= {once, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(once)[1:-1]}
    forms |= {urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), urllib.parse.quote_plus(secret)}
    raw = secret.encode("utf-8")
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        start = 4 if shift else 0  # the first group mixes in the bytes before the key
        stop = 4 * ((shift + len(raw)) // 3)  # the last group depends on the bytes after it
        forms.add(encoded[start:stop])
        forms.add(base64.urlsafe_b64encode(b"\0" * shift + raw).decode("ascii")[start:stop])
    return sorted((f for f in forms if len(f) >= _MIN_FORM_CHARS or f == secret), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every form (``secret_forms``) of every secret masked."""
    for form in secrets:
        if form and form in text:
            text = text.replace(form, MASK)
    return text


def request_key_fields(spec: ModelSpec, request: CompletionRequest) -> dict[str, Any]:
    """The fields that address a response in the store (see the module docstring)."""
    return {
        "endpoint": spec.endpoint,
        "name": spec.name,
        "model_id": spec.model_id or spec.name,
        "messages": [[m.role, m.content] for m in request.messages],
        "prompt": request.prompt,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "sample_index": request.sample_index,
    }


def request_key(spec: ModelSpec, request: CompletionRequest) -> str:
    """The content address (hex sha256) of ``request`` to the model ``spec``."""
    canonical = json.dumps(request_key_fields(spec, request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def describe(spec: ModelSpec, request: CompletionRequest, limit: int = 80) -> str:
    """A short human description of a request for error messages."""
    text = request.prompt if request.prompt is not None else request.messages[-1].content
    excerpt = " ".join(text.split())
    if len(excerpt) > limit:
        excerpt = "..." + excerpt[-limit:]
    return f"model {spec.name!r} sample {request.sample_index} ({spec.endpoint}) prompt {excerpt!r}"


class ResponseStore:
    """A directory of JSONL segments mapping request keys to recorded completions."""

    def __init__(self, path: Path, *, durable: bool = False) -> None:
        self.path = Path(path)
        self.durable = durable
        self._index: dict[str, Completion] = {}
        self._offsets: dict[Path, int] = {}
        self._fd: int | None = None
        self._segment: Path | None = None
        self._refreshed_at = 0.0
        self.skipped_lines = 0
        """Unreadable lines seen (a torn tail after a kill, or foreign junk)."""
        self.refresh()

    def __len__(self) -> int:
        return len(self._index)

    def segments(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.iterdir() if p.suffix == SEGMENT_SUFFIX)

    def refresh(self) -> None:
        """Read what other writers appended since the last refresh (only complete lines)."""
        self._refreshed_at = time.monotonic()
        for segment in self.segments():
            if segment == self._segment:
                continue
            start = self._offsets.get(segment, 0)
            with segment.open("rb") as handle:
                handle.seek(start)
                data = handle.read()
            end = data.rfind(b"\n") + 1  # a line without its newline may still be being written
            for line in data[:end].splitlines():
                self._load_line(line)
            self._offsets[segment] = start + end

    def _load_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
            reply = REPLY_ADAPTER.validate_python(record["reply"])
            key = record["key"]
        except (ValueError, KeyError, TypeError):
            self.skipped_lines += 1
            return
        if isinstance(reply, Completion):
            self._index.setdefault(key, reply)

    def get(self, key: str, *, refresh_after_s: float | None = None) -> Completion | None:
        """The recorded completion for ``key``.

        On a miss, re-read other writers' segments if the last read is older than
        ``refresh_after_s`` (0: always; None: never).
        """
        found = self._index.get(key)
        stale = refresh_after_s is not None and time.monotonic() - self._refreshed_at >= refresh_after_s
        if found is None and stale:
            self.refresh()
            found = self._index.get(key)
        return found

    def put(self, key: str, request_fields: dict[str, Any], reply: Completion) -> None:
        """Append one record as a single whole line; the first record of a key wins."""
        if key in self._index:
            return
        record = {
            "key": key,
            "request": request_fields,
            "reply": REPLY_ADAPTER.dump_python(reply, mode="json"),
            "recorded_at": time.time(),
        }
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        fd = self._open_segment()
        view = memoryview(line)
        while view:  # os.write may write less than asked for very large records
            view = view[os.write(fd, view) :]
        if self.durable:
            os.fsync(fd)
        self._index[key] = reply

    def _open_segment(self) -> int:
        if self._fd is None:
            self.path.mkdir(parents=True, exist_ok=True)
            name = f"seg-{os.getpid()}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"
            self._segment = self.path / name
            self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def as_replay(reply: Completion) -> Completion:
    """A recorded completion served again: verbatim except ``source="replay"``."""
    return reply.model_copy(update={"source": "replay"})


class RecordingBackend(Wrapper):
    """Store mode ``record``: serve a recorded reply if there is one, else call and record.

    Identical requests in flight at once in this process share one call. Only
    completions are recorded: a failure is transient by nature and must be retried
    by a later run, not replayed.
    """

    def __init__(self, inner: Backend, spec: ModelSpec, store: ResponseStore) -> None:
        self.inner = inner
        self.spec = spec
        self.store = store
        self._pending: dict[str, asyncio.Future[Completion | Failure]] = {}
        self.recorded = 0
        self.hits = 0

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        key = request_key(self.spec, request)
        # Another process may have recorded it since; re-reading at most once a second keeps
        # a high request rate from re-scanning the directory on every call.
        found = self.store.get(key, refresh_after_s=1.0)
        if found is not None:
            self.hits += 1
            return as_replay(found)
        if key in self._pending:
            return await asyncio.shield(self._pending[key])
        future: asyncio.Future[Completion | Failure] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            reply = await self.inner.complete(request)
            if isinstance(reply, Completion):
                self.store.put(key, request_key_fields(self.spec, request), reply)
                self.recorded += 1
            future.set_result(reply)
            return reply
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            del self._pending[key]

    async def aclose(self) -> None:
        self.store.close()
        await super().aclose()


class ReplayBackend:
    """Store mode ``replay`` / backend ``replay``: recorded completions only; a miss is a typed failure."""

    def __init__(self, spec: ModelSpec, store: ResponseStore) -> None:
        self.spec = spec
        self.store = store

    async def complete(self, request: CompletionRequest) -> Completion | Failure:
        found = self.store.get(request_key(self.spec, request), refresh_after_s=0.0)
        if found is None:
            return Failure(
                error="replay_miss",
                message=f"no recorded response in {str(self.store.path)!r} for {describe(self.spec, request)}",
                retryable=False,
                model=self.spec.name,
            )
        return as_replay(found)

    async def aclose(self) -> None:
        self.store.close()
