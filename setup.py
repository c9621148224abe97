"""Builds the compiled hot path (wal2http_tui/csrc/*.c) when a C compiler is there.

Everything else about the package is in pyproject.toml. Without a compiler (or the Python
headers) the build goes on without the extension and says so: the package then runs its pure
Python path (``WAL2HTTP_IMPL`` in the README). ``make test`` insists on the extension.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the extension is an accelerator, not a part."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            self._warn(error)

    def build_extension(self, ext: Extension) -> None:
        # OpenSSL's SHA-1 (csrc/sha1.c) when its headers are there (libssl-dev), else our own.
        if self.compiler.has_function(
            "EVP_MD_CTX_new", includes=["openssl/evp.h"], libraries=["crypto"]
        ):
            ext.define_macros.append(("WAL2HTTP_OPENSSL", "1"))
            ext.libraries.append("crypto")
        try:
            super().build_extension(ext)
        except Exception as error:
            self._warn(error)

    @staticmethod
    def _warn(error: Exception) -> None:
        print(
            f"WARNING: wal2http-tui's compiled hot path was not built ({error}); the package "
            "works in pure Python. Install gcc and the Python headers (python3-dev) and "
            "reinstall to build it.",
            file=sys.stderr,
        )


setup(
    ext_modules=[
        Extension(
            "wal2http_tui._native",
            sorted(str(path) for path in Path("wal2http_tui/csrc").glob("*.c")),
            depends=["wal2http_tui/csrc/native.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
