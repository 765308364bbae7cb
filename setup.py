"""Builds the SFU's optional native packet I/O (sfu/transport/_fastio.pyx) with Cython.

Everything else is declared in pyproject.toml. Without Cython or a C compiler the
build goes on without the extension and the SFU runs its pure-Python twin
(sfu/transport/fastio_py.py), which behaves the same, only slower.
"""

from __future__ import annotations

import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - the pure-Python path stands in
            print(
                f"warning: sfu.transport._fastio not built ({exc}); the SFU uses sfu/transport/fastio_py.py",
                file=sys.stderr,
            )

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: {ext.name} not built ({exc}); the SFU uses sfu/transport/fastio_py.py", file=sys.stderr)


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython missing: sfu.transport._fastio not built", file=sys.stderr)
        return []
    try:
        return cythonize(
            # the SFU's packet path, and the load generator's counting (benchmarks/replay_participant.py)
            [
                "sfu/transport/_fastio.pyx",
                "sfu/rtp/_rewriter.pyx",
                "sfu/rtp/_forwarder.pyx",
                "sfu/rtp/_arrivals.pyx",
                "sfu/rtp/_sendlog.pyx",
                "sfu/rtp/_twcc_decode.pyx",
                "benchmarks/_rtp_count.pyx",
            ],
            compiler_directives={"language_level": "3"},
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 - the pure-Python path stands in
        print(f"warning: sfu/transport/_fastio.pyx not translated ({exc})", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
