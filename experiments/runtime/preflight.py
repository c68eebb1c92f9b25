"""Everything about a run that can be checked before Ray starts, checked before Ray starts.

A misspelt card name, an unset key variable or an unwritable output directory used
to pass validation and surface a minute later as an error on every problem. Each
check here raises a one-line ``ConfigError`` naming the bad value, and none writes
anything: the run directory is not created until every check passed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from actors.backends.sim.cards import load_cards
from datasets import DatasetError, iter_problems
from experiments.runtime.config_io import ConfigError, config_from_tree, config_identity
from experiments.runtime.results import CONFIG, RESULTS, scan_results
from protocols.config import DatasetSpec, ExperimentConfig, ModelSpec, StoreSpec
from protocols.messages import Problem


def check_models(models: Iterable[ModelSpec], store: StoreSpec) -> None:
    """Sim cards exist; live models have their key variable set (unless everything is replayed)."""
    for spec in models:
        if spec.backend == "sim":
            try:
                load_cards().card(spec.card_name)
            except KeyError as exc:
                raise ConfigError(f"model {spec.name!r}: {exc.args[0]}") from None
        live = spec.backend == "openai" and store.mode != "replay"
        if live and spec.api_key_env is not None and not os.environ.get(spec.api_key_env):
            raise ConfigError(
                f"model {spec.name!r}: environment variable {spec.api_key_env!r} (api_key_env) is not set or empty"
            )


def check_writable_dir(path: Path, what: str = "run.out_dir") -> None:
    """``path`` is, or can be created as, a directory this process may write into."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{what} {str(path)!r} exists and is not a directory")
        target = path
    else:
        target = path.parent
        while not target.exists():
            target = target.parent
        if not target.is_dir():
            raise ConfigError(f"{what} {str(path)!r} cannot be created: {str(target)!r} is not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {str(path)!r} is not writable (no write permission on {str(target)!r})")
    # Root passes every access() check; a read-only filesystem still refuses. Probe for real.
    probe = target / f".slmsim-probe-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not writable ({exc.strerror} on {str(target)!r})") from None


def first_bad_utf8_line(path: Path) -> int | None:
    """The 1-based number of the first line of ``path`` that is not valid UTF-8, or None."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _dataset_files(spec: DatasetSpec) -> list[Path]:
    if spec.path is None:
        return []
    if spec.path.is_dir():
        return sorted(p for p in spec.path.iterdir() if p.is_file())
    return [spec.path]


def load_dataset(spec: DatasetSpec) -> list[Problem]:
    """The problems of ``spec``, with every way a file can be unreadable turned into one line."""
    return list(read_dataset(spec))


def read_dataset(spec: DatasetSpec) -> Iterator[Problem]:
    """``load_dataset`` one problem at a time (JSONL datasets are read as they are iterated)."""
    try:
        yield from iter_problems(spec)
    except UnicodeDecodeError:
        for path in _dataset_files(spec):
            line = first_bad_utf8_line(path)
            if line is not None:
                raise DatasetError(f"{path}:{line}: not valid UTF-8") from None
        raise DatasetError(f"dataset {spec.name!r}: a file is not valid UTF-8") from None
    except IsADirectoryError as exc:
        raise DatasetError(
            f"dataset.path {str(spec.path)!r}: {str(exc.filename)!r} is a directory, not a data file"
        ) from None
    except OSError as exc:
        raise DatasetError(f"dataset {spec.name!r}: cannot read {str(exc.filename)!r} ({exc.strerror})") from None


def check_existing_run(config: ExperimentConfig) -> None:
    """A run directory left by an earlier run holds this same experiment and readable results."""
    import yaml

    out = config.run.out_dir
    saved = out / CONFIG
    if saved.is_file():
        try:
            tree = yaml.safe_load(saved.read_bytes().decode("utf-8"))
            previous = config_from_tree(tree if isinstance(tree, dict) else {})
        except (UnicodeDecodeError, yaml.YAMLError, ConfigError):
            raise ConfigError(
                f"run directory {str(out)!r} holds an unreadable {CONFIG}; choose another run.out_dir or delete it"
            ) from None
        if config_identity(previous) != config_identity(config):
            raise ConfigError(
                f"run directory {str(out)!r} holds a different experiment; choose another run.out_dir or delete it"
            )
    if (out / RESULTS).is_file():
        scan_results(out / RESULTS, lambda *_: None)  # a bad line in the middle raises, naming it


def check_run(config: ExperimentConfig) -> None:
    """The checks of one run that need no dataset: models, keys, the output directory, the store."""
    check_models(config.models, config.store)
    check_writable_dir(config.run.out_dir)
    if config.store.path is not None and config.store.mode == "record":
        check_writable_dir(config.store.path, "store.path")
    check_existing_run(config)
