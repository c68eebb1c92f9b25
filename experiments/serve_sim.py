"""``slmsim serve-sim``: the simulated models behind an OpenAI-compatible HTTP API (aiohttp).

The implementation lives in ``experiments/serve/`` (wire format, role inference, features,
fault injection, app, CLI); this module is the command's entry point and keeps the old
import path. See ``docs/serve_sim.md``.
"""

from __future__ import annotations

import sys

from experiments.problem_lookup import ProblemLookup, load_lookup
from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.cli import build_parser, main, sim_backends
from experiments.serve.faults import ServerFaults, parse_faults
from experiments.serve.wire import BadRequest

__all__ = [
    "BadRequest",
    "ProblemLookup",
    "ServerFaults",
    "ServerSettings",
    "SimServer",
    "build_parser",
    "load_lookup",
    "main",
    "parse_faults",
    "sim_backends",
    "start",
]

if __name__ == "__main__":
    sys.exit(main())
