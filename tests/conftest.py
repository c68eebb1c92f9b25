"""Shared fixtures: one Ray instance per test process, the shared data root, a leak check, the xdist order.

The suite runs on two pytest-xdist workers (``addopts`` in pyproject.toml; ``-n 0`` runs it
serially). Each worker is its own process with its own shared Ray instance (``ray_session``),
kept in its own ``RAY_TMPDIR`` (set below), so the two instances, their session files and
their ``ray_current_cluster`` address files never meet; the tests that start clusters or
``ray start`` nodes give them temp dirs of their own as well.

Every process the suite starts inherits ``SLMSIM_TEST_SESSION`` (set below, before any
test runs, by the controller; the workers inherit it). At the end of the session, pass or
fail, any such process that is still running and is either a Ray process or no longer a
descendant of pytest (daemonised, like a ``ray start`` head node) is a leak: it is killed
and the session fails. The check runs in the controller once every worker has exited, so a
worker never mistakes the other worker's live Ray for a leak.

Scheduling (``--dist loadfile``): each test file runs on one worker, so a module-scoped
fixture (a server, a fitted pool, the 3-node cluster of test_cluster.py) is built once. The
files that start whole clusters of Ray nodes, and the slow kill/resume files, are scheduled
first, so neither worker ends on a long file. (``--dist loadgroup`` with an ``xdist_group``
for the cluster files would also keep two clusters from starting at once, but pytest-xdist
3.8's loadgroup groups nothing under pytest 9.2: it renames ``item._nodeid``, which pytest
9.2 no longer reads.)
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import kill_all, marked_processes

REPO = Path(__file__).resolve().parents[1]
SESSION_MARK = "SLMSIM_TEST_SESSION"
WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1"... in an xdist worker; None in the controller
if WORKER is None:
    os.environ[SESSION_MARK] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
# This process's Ray (the shared instance, and any local one a subprocess starts without its own
# RAY_TMPDIR) lives here; the controller removes every process's at the end. Short: Ray's unix
# socket paths have a length limit.
RAY_TMP_ROOT = Path("/tmp") / f"slmsim-t{os.environ[SESSION_MARK].rsplit('-', 1)[1]}"
os.environ["RAY_TMPDIR"] = str(RAY_TMP_ROOT / (WORKER or "main"))
LEAK_GRACE_S = 60.0  # Ray agents of a SIGKILLed driver take a while to notice on a loaded machine

HEAVY_FIRST = (
    "tests/experiments/test_cluster.py",
    "tests/experiments/test_driver.py",
    "tests/experiments/test_cluster_ray_start.py",
    "tests/experiments/test_ray_job.py",
    "tests/experiments/test_scale.py",
    "tests/experiments/test_alpha_umi_driver.py",
)
"""Files scheduled before all others (longest first), so neither worker ends on a long one."""


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heaviest files first (a stable sort: every file keeps its own order)."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if WORKER is not None:  # the controller checks, once every worker (and its Ray) is gone
        return
    import time

    deadline = time.monotonic() + LEAK_GRACE_S  # Ray's processes take a moment to exit after shutdown
    leaked = _leaked()
    while leaked and time.monotonic() < deadline:
        time.sleep(0.5)
        leaked = _leaked()
    if leaked:
        kill_all([pid for pid, _ in leaked])
    shutil.rmtree(RAY_TMP_ROOT, ignore_errors=True)
    if not leaked:
        return
    lines = "\n".join(f"  pid {pid}: {cmd}" for pid, cmd in leaked)
    print(f"\nLEAK: {len(leaked)} process(es) started by this test session were still running (now killed):\n{lines}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
