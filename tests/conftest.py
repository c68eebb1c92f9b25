"""Shared fixtures: one Ray instance for the tests that need it, the shared data root, and a leak check.

Every process the suite starts inherits ``SLMSIM_TEST_SESSION`` (set below, before any
test runs). At the end of the session, pass or fail, any such process that is still
running and is either a Ray process or no longer a descendant of pytest (daemonised,
like a ``ray start`` head node) is a leak: it is killed and the session fails.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import kill_all, marked_processes

REPO = Path(__file__).resolve().parents[1]
SESSION_MARK = "SLMSIM_TEST_SESSION"
os.environ[SESSION_MARK] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
LEAK_GRACE_S = 20.0


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The real datasets shipped in the package (or ``$SLMSIM_DATA_DIR``); a missing folder fails the test."""
    root = Path(os.environ.get("SLMSIM_DATA_DIR", REPO / "datasets" / "data"))
    assert root.is_dir(), f"datasets not found at {root} (set SLMSIM_DATA_DIR)"
    return root


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray instance shared by the whole session (2 CPUs, no dashboard)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    yield
    ray.shutdown()


def _leaked() -> list[tuple[int, str]]:
    """Processes of this session still alive that should not be: Ray ones, and daemonised ones."""
    mark = f"{SESSION_MARK}={os.environ[SESSION_MARK]}"
    me = os.getpid()
    found = []
    for proc in marked_processes(mark):
        if proc.pid == me:
            continue
        if "ray" in proc.cmdline or me not in proc.ancestors:
            found.append((proc.pid, proc.cmdline[:160]))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import time

    deadline = time.monotonic() + LEAK_GRACE_S  # Ray's processes take a moment to exit after shutdown
    leaked = _leaked()
    while leaked and time.monotonic() < deadline:
        time.sleep(0.5)
        leaked = _leaked()
    if not leaked:
        return
    kill_all([pid for pid, _ in leaked])
    lines = "\n".join(f"  pid {pid}: {cmd}" for pid, cmd in leaked)
    print(f"\nLEAK: {len(leaked)} process(es) started by this test session were still running (now killed):\n{lines}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
