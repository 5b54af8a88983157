"""Application-protocol analyzers (one module per protocol), registered with the engine."""
