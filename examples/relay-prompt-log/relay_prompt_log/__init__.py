"""Example LLM Relay stages, installed with pip and found through the ``llm_relay.stages``
entry-point group."""
