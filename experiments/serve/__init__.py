"""serve-sim: the simulated models behind an OpenAI-compatible HTTP API (see docs/serve_sim.md).

Modules: lookup (which benchmark problem a prompt is about), wire (OpenAI wire format),
roles (collaboration roles inferred from the conversation), features, faults, app, cli,
local_llm (the real Gemma 3 270M on llama.cpp).
"""
