"""wal2http-tui: PostgreSQL logical replication (pgoutput) to HTTP and Hook0 webhooks."""

__version__ = "0.1.0"
