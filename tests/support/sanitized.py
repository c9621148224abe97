"""A pytest plugin (``-p tests.support.sanitized``): the sanitized build of the compiled hot
path named by ``WAL2HTTP_NATIVE_SO`` stands in for the installed one, loaded before anything
imports it (tests/unit/test_native_memory.py runs the child that uses it)."""

from __future__ import annotations

import importlib.util
import os
import sys

BUILD = os.environ["WAL2HTTP_NATIVE_SO"]
_spec = importlib.util.spec_from_file_location("wal2http_tui._native", BUILD)
assert _spec is not None and _spec.loader is not None
sys.modules["wal2http_tui._native"] = _module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def pytest_report_header() -> str:
    return f"sanitized build: {BUILD}"
