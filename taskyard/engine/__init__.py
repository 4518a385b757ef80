"""The engine: the process that runs requests."""
