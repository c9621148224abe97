"""The engine: the replication server (stream plus sinks), and the facade a controller drives."""
