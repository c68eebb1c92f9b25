"""The one place actors are made remote, and how the driver joins Ray."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from actors.model import ModelActor
from actors.runner import ProblemJob, Runner
from protocols.config import ModelSpec, StoreSpec

# Actors spend their time awaiting I/O or other actors, not computing; reserving a
# CPU each would cap a 2-core laptop at two actors. CPU-heavy grading runs in the
# grader's own worker pool.
ACTOR_CPUS = 0.0


def ensure_ray(address: str | None = None) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local instance once."""
    import ray

    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": True,
        "configure_logging": True,
    }
    if target:
        ray.init(address=target, **kwargs)
    else:
        ray.init(include_dashboard=False, **kwargs)


def spawn_model(spec: ModelSpec, seed: int, store: StoreSpec, store_dir: Path | None) -> Any:
    """A model actor; async, so ``max_concurrency`` bounds requests it interleaves."""
    import ray

    return (
        ray.remote(ModelActor)
        .options(num_cpus=ACTOR_CPUS, max_concurrency=max(1000, 4 * spec.max_in_flight))
        .remote(spec, seed, store, str(store_dir) if store_dir else None)
    )


def spawn_runner(job: ProblemJob, problems_in_flight: int, timeout_s: float) -> Any:
    """A runner actor evaluating problems of a shard, ``problems_in_flight`` at once."""
    import ray

    return (
        ray.remote(Runner)
        .options(
            num_cpus=ACTOR_CPUS,
            max_concurrency=problems_in_flight + 16,
            scheduling_strategy="SPREAD",
        )
        .remote(job, problems_in_flight, timeout_s)
    )


def spawn_mux_judge() -> Any:
    """The SLM-MUX judge as an actor; it builds its graders in its own process."""
    import ray

    from datasets import grader_for
    from orchestrators.slm_mux import MuxJudge

    return ray.remote(MuxJudge).options(num_cpus=ACTOR_CPUS, max_concurrency=1000).remote(grader_for=grader_for)
