"""The real local model for the tests that need it: Gemma 3 270M served by llama.cpp on a free port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.serve.local_llm import LocalModelError, missing_packages, start_server, stop_server

START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The llama.cpp server on a free port; (base_url, process). One per module: a test may stop it.

    Never skipped: the README's test command installs the ``local-llm`` extra, so a missing
    package is a broken install, and the suite's real-model tests must say so.
    """
    missing = missing_packages()
    if missing:
        pytest.fail(
            f"the real-model test needs {missing}: install the test extras as the README does, "
            "pip install -e '.[dev,local-llm]'"
        )
    log = tmp_path_factory.mktemp("llama") / "server.log"
    for attempt in range(START_ATTEMPTS):
        # The port is picked here and bound by the server only after it loaded the model: another
        # process can take it in between (the server then exits): started again on a new port.
        port = free_port()
        try:
            proc = start_server(port, log=log)
            break
        except LocalModelError:
            if attempt + 1 == START_ATTEMPTS:
                raise
    yield f"http://127.0.0.1:{port}/v1", proc
    stop_server(proc)


VOLATILE = {"wall_s", "latency_s", "source", "sources"}
"""Fields that may differ between a live run and its replay: timing, and provenance (``source`` is
"live" then "replay" by contract). The run id is the same: the store mode is not part of a run's identity."""


def normalised(path: Path) -> list[Any]:
    """The JSON lines of ``path`` without the ``VOLATILE`` fields, for comparing a live run with its replay."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in VOLATILE}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return [strip(json.loads(line)) for line in path.read_text().splitlines()]
