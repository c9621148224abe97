"""The terminal UI: Textual screens and panes over ``wal2http_tui.engine.controls.EngineControls``.

Only this package imports Textual (an import-linter contract keeps the engine headless). The
entry point is ``app.run_app``.
"""
