"""The SLM-MUX study: sample pool, model-selection search, test-time scaling sweeps."""
