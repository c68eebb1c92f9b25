"""Fixtures of the serve-sim tests (a SimServer on a free port with recording stand-in models)."""

from tests.experiments.serve_sim_helpers import make_server, served

__all__ = ["make_server", "served"]
