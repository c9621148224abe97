"""The configuration file: its model, loading and validation, and editing it in place."""
