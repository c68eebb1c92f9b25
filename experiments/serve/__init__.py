"""serve-sim: the simulated models behind an OpenAI-compatible HTTP API (see docs/serve_sim.md)."""

from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.faults import ServerFaults, parse_faults
from experiments.serve.wire import BadRequest

__all__ = ["BadRequest", "ServerFaults", "ServerSettings", "SimServer", "parse_faults", "start"]
