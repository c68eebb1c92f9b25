"""Shared fixtures: one Ray instance for the tests that need it, and the shared data root."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
