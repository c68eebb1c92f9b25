"""deploy/kuberay-rayjob.yaml is a valid RayJob whose entrypoint is a valid slmsim run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from experiments.runtime.config_io import load_config

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "deploy" / "kuberay-rayjob.yaml"
SCHEMA = json.loads((REPO / "tests" / "fixtures" / "rayjob_v1_schema.json").read_text())


def test_the_manifest_validates_against_the_rayjob_schema() -> None:
    jsonschema.validate(yaml.safe_load(MANIFEST.read_text()), SCHEMA)


def test_the_schema_rejects_a_misspelt_field() -> None:
    job = yaml.safe_load(MANIFEST.read_text())
    job["spec"]["entryPoint"] = job["spec"].pop("entrypoint")
    with pytest.raises(jsonschema.ValidationError, match="entryPoint"):
        jsonschema.validate(job, SCHEMA)


def test_the_entrypoint_is_a_valid_run_and_runners_fit_the_workers() -> None:
    job = yaml.safe_load(MANIFEST.read_text())
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:4] == ["python", "-m", "experiments.cli", "run"]
    config = load_config(REPO / argv[4], argv[5:])
    assert config.run.out_dir.is_relative_to("/runs"), "results go to the mounted volume"
    assert all(m.replicas == "per_node" for m in config.models)
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    offered = json.loads(json.loads(workers["rayStartParams"]["resources"]))  # KubeRay wants a quoted JSON string
    assert all(offered.get(k, 0) >= v for k, v in config.run.runner_resources.items())
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"])["working_dir"]
