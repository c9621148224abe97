"""Event sinks: where committed row changes are delivered (HTTP endpoints, Hook0)."""
