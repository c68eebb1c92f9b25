"""The alpha-UMi run directory: the driver's contract (config.yaml, results.jsonl, summary.json).

Identity, resume and the model actors are the runner's own (``EXECUTION_FIELDS``,
``ResultsWriter``, ``ModelPool``); only the config type differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from actors.model import RemoteModel
from datasets.paths import PACKAGED_DATA
from datasets.records import read_json
from experiments.runtime.config_io import EXECUTION_FIELDS, ConfigError, validate_tree
from experiments.runtime.driver import ModelPool
from experiments.runtime.placement import ReplicaSet
from experiments.runtime.results import CONFIG
from experiments.runtime.spawn import ensure_ray
from orchestrators.alpha_umi.static import load_records
from protocols.alpha_umi import AlphaUmiConfig

DEFAULT_TOOLBENCH = PACKAGED_DATA / "alpha_umi_toolbench" / "out_of_domain.json"


def identity(config: AlphaUmiConfig) -> dict[str, Any]:
    """Everything but how the run executes (as ``experiments.runtime.config_io.config_identity``)."""
    tree = config.model_dump(mode="json", exclude={"run", "store"})
    for model in tree["models"]:
        for key in EXECUTION_FIELDS:
            model.pop(key, None)
    return tree


def run_id_of(config: AlphaUmiConfig) -> str:
    digest = hashlib.sha256(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()[:10]
    return f"{config.name}-{digest}"


def prepare_run_dir(config: AlphaUmiConfig) -> Path:
    """Create the run directory, or check that it holds this same experiment (then it resumes)."""
    out = config.run.out_dir
    saved = out / CONFIG
    if saved.exists():
        previous = validate_tree(AlphaUmiConfig, yaml.safe_load(saved.read_text()))
        if identity(previous) != identity(config):
            raise ConfigError(
                f"run directory {str(out)!r} holds a different experiment; choose another run.out_dir or delete it"
            )
    out.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    tmp.replace(saved)
    return out


def task_records(config: AlphaUmiConfig) -> tuple[list[dict[str, Any]], str]:
    """The raw records selected by ``dataset`` (offset, then limit) and the file's stem (for ids)."""
    path = config.dataset.path or DEFAULT_TOOLBENCH
    try:
        records = load_records(read_json(Path(path)), str(path))
    except ValueError as exc:  # DatasetError is a ValueError too
        raise ConfigError(str(exc)) from None
    start = config.dataset.offset
    stop = None if config.dataset.limit is None else start + config.dataset.limit
    return records[start:stop], Path(path).stem


def model_pool(config: AlphaUmiConfig) -> ModelPool:
    """One model actor per spec (Ray), through the runner's pool; the store lives beside the results."""
    ensure_ray(config.run.address)
    pool = ModelPool(config.seed, config.store, config.store.path or (config.run.out_dir / "store"))
    pool.ensure(config.models)
    return pool


def remote_models(pool: ModelPool) -> dict[str, Any]:
    """A ``Model`` per spec, routed as the driver routes: a model with ``replicas`` > 1 is a
    ``ReplicaSet`` that sends each call to a replica on this process's node (round-robin)."""
    return {
        name: handle if isinstance(handle, ReplicaSet) else RemoteModel(handle, name)
        for name, handle in pool.handles.items()
    }
