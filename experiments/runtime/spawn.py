"""The one place actors are made remote, and how the driver joins Ray.

Every actor made here is *supervised*: Ray restarts its process if it dies (up to
``restarts`` times) and re-submits the calls that were in flight to the new process
(``max_task_retries``). That is safe because every call is idempotent: a model
completion is addressed by its request (the simulator is a pure function of it, a live
call is recorded in the store), and a runner's
problem result is de-duplicated by the driver's results writer.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

from actors.model import ModelActor
from actors.runner import ProblemJob, Runner
from experiments.runtime.errors import RunAborted
from protocols.config import ModelSpec, StoreSpec
from protocols.interfaces import Backend

# Actors spend their time awaiting I/O or other actors, not computing; reserving a
# CPU each would cap a 2-core laptop at two actors. CPU-heavy grading runs in the
# grader's own worker pool.
ACTOR_CPUS = 0.0
DEFAULT_RESTARTS = 3
RAY_START_ATTEMPTS = 3


@functools.cache
def remote_class(cls: type) -> Any:
    """``ray.remote(cls)``, made once a process. Each ``ray.remote`` call is a new actor class
    that the driver exports again (cloudpickle walks its methods' bytecode: ~0.3 s of driver
    CPU an actor when made per spawn, profiled); one class is exported once per cluster and
    job (Ray tracks that itself, so a new session gets it again)."""
    import ray

    return ray.remote(cls)


def supervised(restarts: int) -> dict[str, Any]:
    """Actor options: restart a dead process ``restarts`` times and re-submit its in-flight calls."""
    return {"max_restarts": restarts, "max_task_retries": restarts}


def ensure_ray(address: str | None = None, *, attempts: int = RAY_START_ATTEMPTS, wait_s: float = 3.0) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local instance once.

    Start-up can time out on a loaded machine (GCS or raylet slow to come up): it is
    retried ``attempts`` times, then reported as one ``RunAborted`` line saying what to try.
    """
    import ray

    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": True,
        "configure_logging": True,
    }
    last: BaseException | None = None
    for attempt in range(attempts):
        try:
            if target:
                ray.init(address=target, **kwargs)
            else:
                ray.init(include_dashboard=False, **kwargs)
            return
        except Exception as exc:  # ray raises ConnectionError, TimeoutError, RuntimeError...
            last = exc
            if ray.is_initialized():
                ray.shutdown()
            if attempt + 1 < attempts:
                time.sleep(wait_s * (attempt + 1))
    where = f"join Ray at {target!r}" if target else "start a local Ray instance"
    reason = " ".join(f"{type(last).__name__}: {last}".split())[:300]
    hint = (
        "check the address and that the cluster is up"
        if target
        else "free memory or CPU (other Ray programs?) and retry, or join a running cluster with --address"
    )
    raise RunAborted(f"could not {where} after {attempts} attempts ({reason}); {hint}")


def spawn_model(
    spec: ModelSpec,
    seed: int,
    store: StoreSpec,
    store_dir: Path | None,
    restarts: int = DEFAULT_RESTARTS,
    node_id: str | None = None,
    backend: Backend | None = None,
) -> Any:
    """A model actor; async, so ``max_concurrency`` bounds requests it interleaves.

    ``node_id`` pins it softly to a node (see ``experiments.runtime.placement``); ``spec.resources``
    restricts it to nodes offering those custom resources; ``backend`` replaces the spec's (tests).
    """

    from experiments.runtime.placement import affinity

    return (
        remote_class(ModelActor)
        .options(
            num_cpus=ACTOR_CPUS,
            resources=dict(spec.resources) or None,
            max_concurrency=max(1000, 4 * spec.max_in_flight),
            **affinity(node_id),
            **supervised(restarts),
        )
        .remote(spec, seed, store, str(store_dir) if store_dir else None, backend)
    )


def spawn_runner(
    job: ProblemJob,
    problems_in_flight: int,
    timeout_s: float,
    restarts: int = DEFAULT_RESTARTS,
    strategy: str = "SPREAD",
    resources: dict[str, float] | None = None,
) -> Any:
    """A runner actor evaluating problems of a shard, ``problems_in_flight`` at once.

    ``strategy`` is Ray's scheduling strategy (SPREAD: runners on different nodes);
    ``resources`` restricts runners to nodes offering those custom resources.
    """

    return (
        remote_class(Runner)
        .options(
            num_cpus=ACTOR_CPUS,
            resources=dict(resources or {}) or None,
            max_concurrency=problems_in_flight + 16,
            scheduling_strategy=strategy,
            **supervised(restarts),
        )
        .remote(job, problems_in_flight, timeout_s)
    )


def is_actor_death(exc: BaseException) -> bool:
    """True for Ray's errors meaning an actor process is gone (dead, or unreachable for now)."""
    try:
        from ray.exceptions import ActorUnavailableError, RayActorError
    except ImportError:  # pragma: no cover - ray is a dependency
        return False
    return isinstance(exc, RayActorError | ActorUnavailableError)
