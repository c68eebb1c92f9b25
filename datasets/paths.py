"""Where dataset files are: the data shipped in the package, a download cache, and the public homes.

The openly licensed datasets and the calibration targets ship inside the package
(``datasets/data/``, each folder with its SOURCE.md and the digests in ``SHA256SUMS``), so
a bare clone or an installed wheel works with no network. ``SLMSIM_DATA_DIR`` points the
loaders at another folder of the same layout instead. A download is only tried when a file
is missing from both, the dataset has a public home, and ``SLMSIM_OFFLINE`` is not set;
downloads are checked against the sha256 of the copy the project was tested on.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import NamedTuple

from datasets.errors import DatasetError

_PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_DATA = _PACKAGE_DIR / "data"
"""The datasets shipped with the project (MIT, Apache-2.0 and CC BY-NC 4.0 data; see each SOURCE.md)."""


# Commit-pinned URLs of the exact bytes described in datasets/data/*/SOURCE.md.
class RemoteFile(NamedTuple):
    """A dataset file's public home and the digest of the bytes we tested against."""

    url: str
    sha256: str


REMOTE: dict[tuple[str, str], RemoteFile] = {
    ("math500", "test.jsonl"): RemoteFile(
        "https://raw.githubusercontent.com/ZubinGou/math-evaluation-harness/"
        "db77bc6bb2a17c90ed2d63e88ebd8c40a82858c5/data/math_oai/test.jsonl",
        "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
    ),
    ("gsm8k", "test.jsonl"): RemoteFile(
        "https://raw.githubusercontent.com/openai/grade-school-math/"
        "3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/test.jsonl",
        "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    ),
    ("gsm8k", "train.jsonl"): RemoteFile(
        "https://raw.githubusercontent.com/openai/grade-school-math/"
        "3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/train.jsonl",
        "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
    ),
}


def data_root() -> Path:
    """The dataset directory: ``$SLMSIM_DATA_DIR`` if set, else the data shipped in the package."""
    env = os.environ.get("SLMSIM_DATA_DIR")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise DatasetError(f"SLMSIM_DATA_DIR={env!r} is not a directory")
        return path
    return PACKAGED_DATA


def calibration_file(name: str) -> Path:
    """A calibration table (published figures the simulator is fitted to), shipped in the package.

    ``$SLMSIM_CALIBRATION_DIR`` overrides the folder, for a user who fits the cards to their own figures.
    """
    env = os.environ.get("SLMSIM_CALIBRATION_DIR")
    folder = Path(env) if env else PACKAGED_DATA / "calibration"
    path = folder / name
    if not path.is_file():
        raise DatasetError(f"calibration file {str(path)!r} not found")
    return path


def cache_dir() -> Path:
    """Where downloads go: ``$SLMSIM_CACHE_DIR`` or ``~/.cache/slmsim/datasets``."""
    env = os.environ.get("SLMSIM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "slmsim" / "datasets"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(remote: RemoteFile, target: Path, timeout_s: float = 60.0) -> Path:
    """Fetch ``remote`` into ``target`` (atomically), verifying its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(remote.url, timeout=timeout_s) as response, partial.open("wb") as out:
        while block := response.read(1 << 20):
            out.write(block)
    digest = sha256_of(partial)
    if digest != remote.sha256:
        partial.unlink()
        raise DatasetError(f"download of {remote.url} has sha256 {digest}, expected {remote.sha256}")
    partial.replace(target)
    return target


def locate(dataset: str, filename: str) -> Path:
    """The local file for ``dataset/filename``: data root, then cache, then (if allowed) a download."""
    looked: list[str] = []
    try:
        local = data_root() / dataset / filename
        if local.is_file():
            return local
        looked.append(str(local))
    except DatasetError as exc:
        looked.append(str(exc))
    cached = cache_dir() / dataset / filename
    if cached.is_file():
        return cached
    looked.append(str(cached))
    remote = REMOTE.get((dataset, filename))
    if remote is not None and not os.environ.get("SLMSIM_OFFLINE"):
        try:
            return download(remote, cached)
        except OSError as exc:
            looked.append(f"download from {remote.url} failed: {exc}")
    raise DatasetError(f"{dataset}/{filename} not found; looked in: {'; '.join(looked)}")
