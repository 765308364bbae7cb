"""Which packet I/O the SFU runs: the native module (``sfu/_fastio.pyx``, built by
``pip install``) or its pure-Python twin (``sfu/fastio_py.py``).

``PEERLEARN_SFU_NATIVE=0`` forces the pure-Python one (the tests run both); a
missing or unloadable native build falls back to it with a warning in the log.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

from . import fastio_py
from .forwarding import RtpForwarder, RtpRewriter

logger = logging.getLogger(__name__)


def _wanted() -> bool:
    return os.environ.get("PEERLEARN_SFU_NATIVE", "1").lower() not in ("0", "false", "no", "off")


def load(native: bool | None = None) -> ModuleType:
    """The implementation module: ``native`` None means "as configured"."""
    if native is None:
        native = _wanted()
    if native:
        try:
            from . import _fastio  # type: ignore[attr-defined]

            native_module: ModuleType = _fastio
            return native_module
        except ImportError as exc:
            logger.warning("native SFU I/O unavailable (%s): using the pure-Python path", exc)
    return fastio_py


impl = load()
SrtpContext = impl.SrtpContext
SendBatch = impl.SendBatch
Receiver = impl.Receiver
Destination = impl.Destination
BatchSink = impl.BatchSink
NATIVE: bool = impl.NATIVE


def rewriter_class(native: bool | None = None) -> type[RtpRewriter]:
    """``RtpRewriter`` in C (``sfu/_rewriter.pyx``) when the native path is on, else the Python one."""
    if native is None:
        native = NATIVE
    if native:
        try:
            from ._rewriter import NativeRewriter  # type: ignore[import-not-found]

            cls: type[RtpRewriter] = NativeRewriter
            return cls
        except ImportError as exc:
            logger.warning("native rewriter unavailable (%s): using the Python one", exc)
    return RtpRewriter


#: what consumers build their rewriters from
Rewriter = rewriter_class()


def forwarder_class(native: bool | None = None) -> type[RtpForwarder]:
    """``RtpForwarder`` in C (``sfu/_forwarder.pyx``) when the native path is on, else the Python one."""
    if native is None:
        native = NATIVE
    if native:
        try:
            from ._forwarder import NativeForwarder  # type: ignore[import-not-found]

            cls: type[RtpForwarder] = NativeForwarder
            return cls
        except ImportError as exc:
            logger.warning("native forwarder unavailable (%s): using the Python one", exc)
    return RtpForwarder


#: what producers build their forwarders from
Forwarder = forwarder_class()
