"""The built-in stages, one per module, registered under the ``llm_relay.stages`` entry points."""
