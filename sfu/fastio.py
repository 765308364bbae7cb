"""Which packet I/O the SFU runs: the native module (``sfu/_fastio.pyx``, built by
``pip install``) or its pure-Python twin (``sfu/fastio_py.py``).

``PEERLEARN_SFU_NATIVE=0`` forces the pure-Python one (the tests run both); a
missing or unloadable native build falls back to it with a warning in the log.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType
from typing import TypeVar

from . import fastio_py
from .forwarding import RtpForwarder, RtpRewriter

logger = logging.getLogger(__name__)

T = TypeVar("T")


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


def _native_class(fallback: type[T], module: str, name: str, native: bool | None) -> type[T]:
    """``name`` from the native ``module`` when the native path is on and built, else ``fallback``
    (the Python class it behaves like)."""
    if native is None:
        native = NATIVE
    if native:
        try:
            cls: type[T] = getattr(importlib.import_module(f"{__package__}.{module}"), name)
            return cls
        except ImportError as exc:
            logger.warning("native %s unavailable (%s): using the Python one", name, exc)
    return fallback


def rewriter_class(native: bool | None = None) -> type[RtpRewriter]:
    """``RtpRewriter`` in C (``sfu/_rewriter.pyx``) when the native path is on, else the Python one."""
    return _native_class(RtpRewriter, "_rewriter", "NativeRewriter", native)


def forwarder_class(native: bool | None = None) -> type[RtpForwarder]:
    """``RtpForwarder`` in C (``sfu/_forwarder.pyx``) when the native path is on, else the Python one."""
    return _native_class(RtpForwarder, "_forwarder", "NativeForwarder", native)


#: what consumers build their rewriters from
Rewriter = rewriter_class()
#: what producers build their forwarders from
Forwarder = forwarder_class()
