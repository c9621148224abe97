"""``wal2http-tui demo``: a throwaway PostgreSQL, a workload and local receivers."""
