"""The compiled hot path's own tests again, under AddressSanitizer and UndefinedBehaviorSanitizer.

The extension is compiled once more with ``-fsanitize=address,undefined`` into a temporary
folder, and the equality tests (random and malformed pgoutput messages, huge values, wide rows,
random events) run in a child Python that loads that build (the plugin
tests/support/sanitized.py), with Python's allocator switched to malloc so that every buffer the
extension allocates is watched. Any out-of-bounds access, use after free or undefined behaviour
aborts the child with a report, and this test shows it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.support.paths import REPOSITORY

CSRC = REPOSITORY / "wal2http_tui" / "csrc"
CHILD = [
    *("-m", "pytest", "-p", "tests.support.sanitized", "-p", "no:cacheprovider"),
    *("tests/unit/test_native_rows.py", "tests/unit/test_native_events.py"),
]


def _sanitizer_runtime() -> str | None:
    if shutil.which("gcc") is None:
        return None
    found = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found if found and os.path.isabs(found) and os.path.exists(found) else None


@pytest.mark.slow
@pytest.mark.skipif(_sanitizer_runtime() is None, reason="gcc with libasan is needed")
def test_the_compiled_path_is_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    library = tmp_path / ("_native" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            "-fPIC",
            "-shared",
            f"-I{sysconfig.get_paths()['include']}",
            *sorted(str(path) for path in CSRC.glob("*.c")),
            "-o",
            str(library),
        ],
        check=True,
    )
    env = {
        **os.environ,
        "WAL2HTTP_NATIVE_SO": str(library),
        "LD_PRELOAD": str(_sanitizer_runtime()),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1",
        "PYTHONMALLOC": "malloc",
        "WAL2HTTP_EXAMPLES": "250",  # random messages per property: a sanitized build is slow
    }
    child = subprocess.run(
        [sys.executable, *CHILD],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = child.stdout[-2000:] + child.stderr[:6000]  # the sanitizer's report comes first
    assert child.returncode == 0, report
    assert "passed" in child.stdout and "skipped" not in child.stdout, report
    assert f"sanitized build: {library}" in child.stdout, report
