"""Load an experiment config from YAML plus ``key=value`` overrides, validated once.

Every problem is reported as one line naming the bad key or value, before
anything runs, via ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from protocols.config import ExperimentConfig


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the problem."""


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node: Any = tree
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"override {dotted!r}: no list item {key!r} at {'.'.join(keys[:i])!r}")
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {'.'.join(keys[:i])!r} is not a section")
        node = node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"override {dotted!r}: no list item {last!r}")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {dotted!r}: parent is not a section")


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (``k=3``, ``m=[A,B]``)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc.__class__.__name__})") from exc
        _set_path(tree, key.strip(), value)
    return tree


def describe(error: ValidationError) -> str:
    """One line naming each bad key or value."""
    parts = []
    items = error.errors()
    failed_within = {tuple(item["loc"][:n]) for item in items for n in range(1, len(item["loc"]))}
    for item in items:
        if item["type"] == "too_short" and tuple(item["loc"]) in failed_within:
            continue  # pydantic also counts the list short by its invalid items: the item error says it
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-after"))
        loc = loc or "config"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        elif item["type"] == "missing":
            parts.append(f"missing key {loc!r}")
        elif item["type"] == "value_error":
            parts.append(f"{loc}: {item['msg'].removeprefix('Value error, ')}")
        else:
            parts.append(f"{loc}: {item['msg']} (got {item.get('input')!r})")
    return "invalid config: " + "; ".join(parts)


M = TypeVar("M", bound=BaseModel)


def validate_tree(cls: type[M], tree: dict[str, Any]) -> M:
    """Validate a plain dict into config model ``cls`` or raise a one-line ``ConfigError``."""
    try:
        return cls.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def config_from_tree(tree: dict[str, Any]) -> ExperimentConfig:
    """Validate a plain dict into an ``ExperimentConfig`` or raise a one-line ``ConfigError``."""
    return validate_tree(ExperimentConfig, tree)


def read_tree(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with a one-line error if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {str(path)!r} is not valid UTF-8 at line {line}") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return tree


def load_model(cls: type[M], path: str | Path, overrides: Sequence[str] = ()) -> M:
    """YAML file + ``key=value`` overrides -> a validated config of any kind (run, study, search)."""
    return validate_tree(cls, apply_overrides(read_tree(path), list(overrides)))


def load_config(path: str | Path, overrides: Sequence[str] | None = None) -> ExperimentConfig:
    """YAML file + overrides -> a validated experiment config. Relative paths resolve from the cwd."""
    return load_model(ExperimentConfig, path, overrides or ())


def dump_config(config: ExperimentConfig) -> str:
    """The resolved config as YAML (what ``config.yaml`` in a run directory holds)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


# Per-model knobs that change how fast or how politely a run executes, never its results.
EXECUTION_FIELDS = {
    "max_in_flight",
    "requests_per_minute",
    "tokens_per_minute",
    "timeout_s",
    "http_client",
    "max_retries",
    "time_scale",
    "replicas",
    "resources",
}


def config_identity(config: ExperimentConfig) -> dict[str, Any]:
    """What makes two runs the same experiment: everything but how it executes.

    Resuming may change ``run.*``, the response store's mode (a recorded run re-run in
    replay mode is the same experiment, so it gets the same run id) and per-model
    execution knobs (e.g. more requests in flight), but not the dataset, models,
    orchestrator or seed. Each completion still says where it came from (``source``).
    """
    tree = config.model_dump(mode="json", exclude={"run", "store"})
    for model in tree["models"]:
        for key in EXECUTION_FIELDS:
            model.pop(key, None)
    return tree
