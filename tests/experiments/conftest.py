"""Fixtures of the experiments tests: serve-sim (a SimServer on a free port with recording stand-in
models) and the real local model (``gemma``)."""

from tests.experiments.gemma_server import gemma
from tests.experiments.serve_sim_helpers import make_server, served

__all__ = ["gemma", "make_server", "served"]
